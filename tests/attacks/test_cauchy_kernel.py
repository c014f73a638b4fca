"""The Cauchy search's cumulative sums as a CUDA kernel (``minidnn/attacks/cauchy_kernels.py``) give
NumPy's bits: its C++ source compiled for the host here (hypothesis choosing the shapes), the kernel
itself on CuPy where a GPU is there.
"""
import ctypes

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidnn import backend
from minidnn.attacks import cauchy_kernels, lbfgsb

from support.arrays import seeds
from support.host_kernels import bits, compile_host, pointer, record_calls, same_bits

HOST = r"""
%(preamble)s
template <typename T>
static void run(long long columns, long long J, long long L, T* a) {
    for (long long i = 0; i < columns; ++i) {
        %(operation)s
    }
}
extern "C" void accumulate_float64(long long columns, long long J, long long L, double* a) { run<double>(columns, J, L, a); }
extern "C" void accumulate_float32(long long columns, long long J, long long L, float* a) { run<float>(columns, J, L, a); }
"""


def compile_accumulate(tmp_path, preamble=cauchy_kernels.PREAMBLE):
    return compile_host(tmp_path, HOST % {"preamble": preamble, "operation": cauchy_kernels.OPERATION})


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    return compile_accumulate(tmp_path_factory.mktemp("cauchy"))


def host_accumulate(library, a):
    rows, steps = a.shape[:2]
    columns = a.shape[2] if a.ndim == 3 else 1
    getattr(library, f"accumulate_{a.dtype.name}")(ctypes.c_longlong(rows * columns), ctypes.c_longlong(steps),
                                                   ctypes.c_longlong(columns), pointer(a))
    return a


def states(rng, shape, dtype):
    """Values of mixed magnitudes and signs (sums that round), with a few ±0, ±∞ and NaNs."""
    a = rng.standard_normal(shape) * 10.0 ** rng.integers(-4, 5, shape)
    special = rng.random(shape) < 0.02
    a[special] = rng.choice([0.0, -0.0, numpy.inf, -numpy.inf, numpy.nan], size=int(special.sum()))
    return a.astype(dtype)


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 9), steps=st.integers(1, 40), columns=st.sampled_from([None, 1, 3, 20]),
       dtype=st.sampled_from([numpy.float64, numpy.float32]), seed=seeds)
def test_host_compiled_kernel_gives_cumsums_bits(library, rows, steps, columns, dtype, seed):
    shape = (rows, steps) if columns is None else (rows, steps, columns)
    a = states(numpy.random.default_rng(seed), shape, dtype)
    with numpy.errstate(invalid="ignore"):
        expected = numpy.cumsum(a, axis=1)
        loop = lbfgsb._accumulate_states(a.copy(), form="loop")
        ours = host_accumulate(library, a.copy())
    assert same_bits(ours, expected) and same_bits(loop, expected)


def test_a_kernel_that_skips_a_state_is_caught(tmp_path):
    """Negative control: starting each column one state late."""
    wrong = cauchy_kernels.PREAMBLE.replace("long long at = r * J * L + l;", "long long at = r * J * L + l + L;")
    assert wrong != cauchy_kernels.PREAMBLE
    library = compile_accumulate(tmp_path, wrong)
    a = numpy.random.default_rng(0).standard_normal((4, 6, 3))
    buffer = numpy.zeros((5, 6, 3))                 # a spare row: the shifted columns end past row 3
    buffer[:4] = a
    library.accumulate_float64(ctypes.c_longlong(4 * 3), ctypes.c_longlong(6), ctypes.c_longlong(3), pointer(buffer))
    assert not (bits(buffer[:4]) == bits(numpy.cumsum(a, axis=1))).all()


@pytest.mark.parametrize("kernels", [True, False], ids=["kernel", "cumsum"])
@pytest.mark.parametrize("dtype", [numpy.float64, numpy.float32])
def test_cupy_accumulates_in_numpys_order(dtype, kernels, monkeypatch, cupy_backend):
    """The CUDA kernel gives NumPy's bits; with the kernels off, CuPy's cumsum is used (its own rounding)."""
    cupy = cupy_backend
    launches = record_calls(monkeypatch, cauchy_kernels, "accumulate")
    rng = numpy.random.default_rng(1)
    with backend.use_fused_kernels(kernels), numpy.errstate(invalid="ignore"):
        for shape in [(1000, 33, 20), (1000, 33), (3, 1, 20)]:
            a = states(rng, shape, dtype)
            got = cupy.asnumpy(lbfgsb._accumulate_states(cupy.asarray(a)))
            expected = numpy.cumsum(a, axis=1)
            if kernels:
                assert same_bits(got, expected)
            else:       # another order of additions: within a few ulps of the sum of magnitudes
                bound = 8 * numpy.finfo(dtype).eps * numpy.cumsum(abs(a).astype(numpy.float64), axis=1)
                finite = numpy.isfinite(expected)
                assert (abs(got[finite] - expected[finite]) <= bound[finite]).all()
                assert (numpy.isnan(got) == numpy.isnan(expected)).all()
        if kernels:
            with pytest.raises(ValueError, match="C-contiguous"):
                cauchy_kernels.accumulate(cupy.asarray(states(rng, (4, 5, 3), dtype)).transpose(1, 0, 2))
    assert bool(launches) == kernels
