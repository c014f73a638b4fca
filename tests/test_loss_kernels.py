"""Softmax cross-entropy as one CUDA kernel (``minidnn/loss_kernels.py``) agrees with the array version,
``losses.softmax_cross_entropy_rows``, to rounding: its C++ source compiled for the host here
(hypothesis choosing batch, classes, scales and awkward logits), the kernel itself on CuPy where a
GPU is there. It cannot give NumPy's bits: its exponential and logarithm are the C library's (CUDA's
on the GPU) and it sums each row left to right where NumPy sums pairwise.
"""
import ctypes

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidnn import backend, loss_kernels
from minidnn.attacks.objective import AttackObjective
from minidnn.losses import SoftmaxCrossEntropy, softmax_cross_entropy_rows
from minidnn.networks import Sequential
from minidnn.layers import Dense, ReLU

from support.arrays import seeds
from support.host_kernels import compile_host, pointer, record_calls
from support.strict_xp import strict

HOST = r"""
using std::exp;
using std::log;
%(preamble)s
template <typename T>
static void rows(long long n, const T* z, const long long* labels, long long K, double scale, double invalid,
                 T* nlls, T* g) {
    for (long long i = 0; i < n; ++i) {
        T& nll = nlls[i];
        const long long t = labels[i];
        %(operation)s
    }
}
#define ROWS(T, name) extern "C" void name(long long n, const T* z, const long long* t, long long K, double scale, \
    double invalid, T* nll, T* g) { rows<T>(n, z, t, K, scale, invalid, nll, g); }
ROWS(double, ce_float64) ROWS(float, ce_float32)
"""


def compile_ce(tmp_path, preamble=loss_kernels.PREAMBLE):
    return compile_host(tmp_path, HOST % {"preamble": preamble, "operation": loss_kernels.OPERATION})


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    return compile_ce(tmp_path_factory.mktemp("ce"))


def host_rows(library, z, labels, grad_scale):
    n, k = z.shape
    labels = numpy.ascontiguousarray(labels, dtype=numpy.int64)
    nll, g = numpy.empty(n, dtype=z.dtype), numpy.empty_like(z)
    getattr(library, f"ce_{z.dtype.name}")(ctypes.c_longlong(n), pointer(z), pointer(labels), ctypes.c_longlong(k),
                                           ctypes.c_double(1.0 if grad_scale is None else grad_scale),
                                           ctypes.c_double(numpy.nan), pointer(nll), pointer(g))
    return nll, g


def assert_close(ours, expected, z, grad_scale):
    """Within a few ulps of the values involved: nll to the logits' magnitude, G to |grad_scale|."""
    (nll, g), (want_nll, want_g) = ours, expected
    eps = numpy.finfo(z.dtype).eps
    size = max(1.0, float(numpy.abs(z[numpy.isfinite(z)]).max(initial=0.0)))
    numpy.testing.assert_allclose(nll, want_nll, rtol=16 * eps, atol=16 * eps * size)
    numpy.testing.assert_allclose(g, want_g, rtol=16 * eps, atol=16 * eps * abs(grad_scale or 1.0))


def logits(rng, n, k, dtype, spread, specials):
    z = spread * rng.standard_normal((n, k))
    if specials:                                    # ties, ±0, ±∞ and NaN in some rows
        z[rng.random((n, k)) < 0.2] = rng.choice([0.0, -0.0, 1.0, numpy.inf, -numpy.inf, numpy.nan], size=1)[0]
    return z.astype(dtype)


@settings(max_examples=80, deadline=None)
@given(n=st.integers(1, 20), k=st.integers(1, 12), dtype=st.sampled_from([numpy.float64, numpy.float32]),
       spread=st.sampled_from([0.1, 3.0, 60.0]), specials=st.booleans(),
       grad_scale=st.sampled_from([None, 1.0, -1.0, 0.0078125, 1 / 3]), seed=seeds)
def test_host_compiled_kernel_agrees_with_the_array_code(library, n, k, dtype, spread, specials, grad_scale, seed):
    rng = numpy.random.default_rng(seed)
    z, labels = logits(rng, n, k, dtype, spread, specials), rng.integers(0, k, n)
    with numpy.errstate(invalid="ignore", over="ignore"):
        expected = softmax_cross_entropy_rows(z, labels, grad_scale)
    ours = host_rows(library, z, labels, grad_scale)
    assert ours[0].dtype == ours[1].dtype == z.dtype
    assert_close(ours, expected, z, grad_scale)


def test_a_label_outside_the_classes_gives_a_nan_row(library):
    """No read outside the row (NumPy would raise; CuPy's fancy indexing would wrap around silently)."""
    z = numpy.random.default_rng(0).standard_normal((4, 5))
    nll, g = host_rows(library, z, numpy.array([0, 5, -1, 4]), 0.25)
    assert numpy.isnan(nll[[1, 2]]).all() and numpy.isnan(g[[1, 2]]).all()
    expected = softmax_cross_entropy_rows(z[[0, 3]], numpy.array([0, 4]), 0.25)
    assert_close((nll[[0, 3]], g[[0, 3]]), expected, z, 0.25)


@pytest.mark.parametrize("old, new", [("exp(F(z[base + k]) - top)", "exp(F(z[base + k]))"),
                                      ("p = p - F(1);", "p = p - F(0.999);")],
                         ids=["max not subtracted", "onehot off"])
def test_a_wrong_kernel_is_caught(tmp_path, old, new):
    """Negative controls: log-sum-exp without the shift (overflows at large logits); a wrong onehot."""
    wrong = loss_kernels.PREAMBLE.replace(old, new)
    assert wrong != loss_kernels.PREAMBLE
    library = compile_ce(tmp_path, wrong)
    rng = numpy.random.default_rng(1)
    z, labels = logits(rng, 16, 10, numpy.float32, 60.0, False), rng.integers(0, 10, 16)
    with numpy.errstate(over="ignore", invalid="ignore"):
        ours = host_rows(library, z, labels, 1.0)
    with pytest.raises(AssertionError):
        assert_close(ours, softmax_cross_entropy_rows(z, labels, 1.0), z, 1.0)


def test_the_kernel_is_not_used_off_cupy(monkeypatch):
    """On NumPy and on the strict stand-in the loss takes the array path (the kernel would fail here)."""
    def no_kernel(*args):
        raise AssertionError("the CUDA kernel was asked for off CuPy")
    monkeypatch.setattr(loss_kernels, "softmax_cross_entropy", no_kernel)
    z, t = numpy.array([[1.0, 2.0, 0.5]]), numpy.array([1])
    for module in (numpy, strict):
        loss = SoftmaxCrossEntropy()
        value = float(loss.forward(module.asarray(z), module.asarray(t)))
        assert value == pytest.approx(-numpy.log(numpy.exp(2.0) / numpy.exp(z).sum()), rel=1e-12)


@pytest.mark.parametrize("kernels", [True, False], ids=["kernel", "array code"])
@pytest.mark.parametrize("dtype", [numpy.float64, numpy.float32])
def test_cupy_agrees_with_numpy(dtype, kernels, monkeypatch, cupy_backend):
    """The CUDA kernel (or CuPy's array code) in the loss and in the attack objective, against NumPy."""
    cupy = cupy_backend
    launches = record_calls(monkeypatch, loss_kernels, "softmax_cross_entropy")
    rng = numpy.random.default_rng(2)
    with backend.use_fused_kernels(kernels), numpy.errstate(invalid="ignore", over="ignore"):
        for n, k, spread, specials, grad_scale in [(128, 10, 3.0, False, 1 / 128), (7, 3, 60.0, True, -1.0),
                                                   (1, 1, 1.0, False, None)]:
            z, labels = logits(rng, n, k, dtype, spread, specials), rng.integers(0, k, n)
            expected = softmax_cross_entropy_rows(z, labels, grad_scale)
            nll, g = softmax_cross_entropy_rows(cupy.asarray(z), cupy.asarray(labels), grad_scale)
            assert nll.dtype == g.dtype == dtype
            assert_close((cupy.asnumpy(nll), cupy.asnumpy(g)), expected, z, grad_scale)
        with backend.use_backend("numpy"):                 # the host twin (the fixture made CuPy the default)
            net = Sequential([Dense(6, 5, rng=0), ReLU(), Dense(5, 4, rng=1)], (6,)).astype(dtype)
        x = rng.uniform(size=(9, 6)).astype(dtype)
        targets = rng.integers(0, 4, 9)
        f, grad, _ = AttackObjective(net, 0.3, x, targets)(numpy.clip(x + 0.05, 0, 1))
        device = net.astype(dtype, module=cupy)
        f_gpu, grad_gpu, _ = AttackObjective(device, 0.3, cupy.asarray(x), cupy.asarray(targets))(
            cupy.asarray(numpy.clip(x + 0.05, 0, 1)))
        tolerance = 1e-12 if dtype == numpy.float64 else 2e-5
        numpy.testing.assert_allclose(cupy.asnumpy(f_gpu), f, rtol=tolerance)
        numpy.testing.assert_allclose(cupy.asnumpy(grad_gpu), grad, rtol=tolerance, atol=tolerance)
    assert bool(launches) == kernels                 # the kernel ran, or the array code did
