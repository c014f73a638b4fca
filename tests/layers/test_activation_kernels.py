"""ReLU and the sigmoid as CUDA kernels (``minidnn/layers/activation_kernels.py``) agree with the array
versions: ReLU's forward and the sigmoid's backward bit for bit, the sigmoid's forward to rounding (its
tanh is the C library's here, CUDA's on a GPU). Their C++ source compiled for the host here (hypothesis
choosing values with ±0, ±∞ and NaNs among them), the kernels themselves on CuPy where there is one.
"""
import ctypes

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidnn import backend
from minidnn.layers import ReLU, Sigmoid, activation_kernels

from support.arrays import seeds, strided
from support.host_kernels import compile_host, pointer, record_calls, same_bits as same

HOST = r"""
using std::tanh;
%(preamble)s
#define LOOP(T, name, params, body) extern "C" void name(long long n, params) { \
    for (long long i = 0; i < n; ++i) { body } }
#define KERNELS(T, suffix) \
LOOP(T, relu_##suffix, const T* xs ARG T* ys ARG bool* masks, T& y = ys[i]; bool& mask = masks[i]; const T x = xs[i]; %(relu)s) \
LOOP(T, sigmoid_##suffix, const T* xs ARG T* ys, T& y = ys[i]; const T x = xs[i]; %(sigmoid)s) \
LOOP(T, sigmoid_grad_##suffix, const T* gys ARG const T* ys ARG T* gxs, \
     T& gx = gxs[i]; const T gy = gys[i]; const T y = ys[i]; %(sigmoid_grad)s)
#define ARG ,
KERNELS(double, float64)
KERNELS(float, float32)
"""


def compile_activations(tmp_path, preamble=activation_kernels.PREAMBLE):
    return compile_host(tmp_path, HOST % {"preamble": preamble, "relu": activation_kernels.RELU[2],
                                          "sigmoid": activation_kernels.SIGMOID[2],
                                          "sigmoid_grad": activation_kernels.SIGMOID_GRAD[2]})


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    return compile_activations(tmp_path_factory.mktemp("activations"))


def values(rng, shape, dtype):
    """Normal values of mixed magnitudes, with ±0, ±∞ and NaNs among them."""
    x = rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 3, shape)
    special = rng.random(shape) < 0.1
    x[special] = rng.choice([0.0, -0.0, numpy.inf, -numpy.inf, numpy.nan], size=int(special.sum()))
    return x.astype(dtype)


def host(library, name, *arrays, out_dtypes):
    outs = [numpy.empty(arrays[0].shape, dtype=d) for d in out_dtypes]
    getattr(library, f"{name}_{arrays[0].dtype.name}")(ctypes.c_longlong(arrays[0].size),
                                                         *[pointer(a) for a in arrays + tuple(outs)])
    return outs


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 300), dtype=st.sampled_from([numpy.float64, numpy.float32]), seed=seeds)
def test_host_compiled_kernels_agree_with_the_array_code(library, n, dtype, seed):
    rng = numpy.random.default_rng(seed)
    x, gy = values(rng, n, dtype), values(rng, n, dtype)
    relu, sigmoid = ReLU(), Sigmoid()
    with numpy.errstate(invalid="ignore", over="ignore"):
        want_y = relu.forward(x)
        y, mask = host(library, "relu", x, out_dtypes=(dtype, bool))
        assert same(y, want_y) and (mask == relu.mask).all()
        want_s = sigmoid.forward(x)
        s, = host(library, "sigmoid", x, out_dtypes=(dtype,))
        numpy.testing.assert_allclose(s, want_s, rtol=4 * numpy.finfo(dtype).eps, atol=numpy.finfo(dtype).eps)
        g, = host(library, "sigmoid_grad", gy, want_s, out_dtypes=(dtype,))
        assert same(g, sigmoid.backward(gy))


@pytest.mark.parametrize("old, new", [("y = x * F(mask);", "y = mask ? x : F(0);"),
                                      ("gy * y * (F(1) - y)", "gy * (y * (F(1) - y))")],
                         ids=["ReLU's zero for negative x", "the sigmoid's product order"])
def test_other_arithmetic_is_caught(tmp_path, old, new):
    """Negative controls: +0 instead of −0 (and 0 instead of NaN·0) for ReLU; another product order."""
    wrong = activation_kernels.PREAMBLE.replace(old, new)
    assert wrong != activation_kernels.PREAMBLE
    library = compile_activations(tmp_path, wrong)
    rng = numpy.random.default_rng(0)
    x, gy = values(rng, 400, numpy.float64), values(rng, 400, numpy.float64)
    relu, sigmoid = ReLU(), Sigmoid()
    with numpy.errstate(invalid="ignore", over="ignore"):
        y, _ = host(library, "relu", x, out_dtypes=(numpy.float64, bool))
        s = sigmoid.forward(x)
        g, = host(library, "sigmoid_grad", gy, s, out_dtypes=(numpy.float64,))
        assert not (same(y, relu.forward(x)) and same(g, sigmoid.backward(gy)))


@pytest.mark.parametrize("use_kernels", [True, False], ids=["kernels", "array code"])
@pytest.mark.parametrize("dtype", [numpy.float64, numpy.float32])
def test_cupy_agrees_with_numpy(dtype, use_kernels, monkeypatch, cupy_backend):
    """The CUDA kernels (or CuPy's array code) on contiguous and strided inputs, against NumPy."""
    cupy = cupy_backend
    launches = record_calls(monkeypatch, activation_kernels, "relu", "sigmoid", "sigmoid_grad")
    rng = numpy.random.default_rng(1)
    with backend.use_fused_kernels(use_kernels), numpy.errstate(invalid="ignore", over="ignore"):
        x, gy = values(rng, (6, 40, 3), dtype), values(rng, (6, 40, 3), dtype)
        for on_device in (cupy.asarray, lambda a: strided(cupy, a)):
            relu, relu_gpu, sigmoid, sigmoid_gpu = ReLU(), ReLU(), Sigmoid(), Sigmoid()
            assert same(cupy.asnumpy(relu_gpu.forward(on_device(x))), relu.forward(x))
            assert (cupy.asnumpy(relu_gpu.mask) == relu.mask).all()
            numpy.testing.assert_allclose(cupy.asnumpy(sigmoid_gpu.forward(on_device(x))), sigmoid.forward(x),
                                          rtol=4 * numpy.finfo(dtype).eps, atol=numpy.finfo(dtype).eps)
            sigmoid_gpu.y = on_device(sigmoid.y)                 # the backward from the same y
            assert same(cupy.asnumpy(sigmoid_gpu.backward(on_device(gy))), sigmoid.backward(gy))
    assert sorted(set(launches)) == (["relu", "sigmoid", "sigmoid_grad"] if use_kernels else [])
