"""Max pooling as CUDA kernels (``minidnn/layers/pooling_kernels.py``) gives the array version's bits:
its C++ source compiled for the host here (hypothesis choosing shapes, windows, strides, paddings, and
inputs with ties, NaNs, infinities and signed zeros), the kernels themselves on CuPy where a GPU is there.
A NaN is compared as a NaN: which NaN an operation on two of them returns (sign, payload) is the
hardware's choice, and NumPy's vector loops and a GPU choose differently.
"""
import ctypes

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidnn import backend
from minidnn.layers import MaxPool2D, pooling_kernels
from minidnn.layers.im2col import output_size

from support.arrays import image_shape, seeds, strided, window_geometry
from support.host_kernels import compile_host, pointer, record_calls, same_bits as same

SIZES = "long long C, long long H, long long W, long long KH, long long KW, long long SH, long long SW, " \
        "long long PH, long long PW, long long OH, long long OW"
HOST = r"""
%(preamble)s
template <typename T>
static void forward(long long total, const T* x, T* ys, short* argmaxes, %(sizes)s, double pad) {
    for (long long i = 0; i < total; ++i) {
        T& y = ys[i];
        short& argmax = argmaxes[i];
        %(forward)s
    }
}
template <typename T>
static void backward(long long total, const T* gy, const short* argmax, T* gxs, %(sizes)s) {
    for (long long i = 0; i < total; ++i) {
        T& gx = gxs[i];
        %(backward)s
    }
}
#define FORWARD(T, name) extern "C" void name(long long total, const T* x, T* y, short* a, %(sizes)s, double pad) \
    { forward<T>(total, x, y, a, %(args)s, pad); }
#define BACKWARD(T, name) extern "C" void name(long long total, const T* gy, const short* a, T* gx, %(sizes)s) \
    { backward<T>(total, gy, a, gx, %(args)s); }
FORWARD(double, forward_float64) FORWARD(float, forward_float32)
BACKWARD(double, backward_float64) BACKWARD(float, backward_float32)
"""


def compile_pooling(tmp_path, preamble=pooling_kernels.PREAMBLE):
    return compile_host(tmp_path, HOST % {"preamble": preamble, "sizes": SIZES, "args": pooling_kernels.ARGS,
                                          "forward": pooling_kernels.FORWARD[2],
                                          "backward": pooling_kernels.BACKWARD[2]})


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    return compile_pooling(tmp_path_factory.mktemp("pooling"))


def awkward(rng, shape, dtype):
    """Values from a small set (ties in most windows), with NaNs, ±∞ and ±0 among them."""
    values = numpy.array([-2.0, -1.0, -0.0, 0.0, 1.0, 2.5, numpy.inf, -numpy.inf, numpy.nan])
    weights = numpy.array([4, 4, 3, 3, 4, 4, 1, 1, 1], dtype=float)
    return rng.choice(values, size=shape, p=weights / weights.sum()).astype(dtype)


def gradients(rng, shape, dtype):
    """Normal values of mixed magnitudes (sums that round), a tenth of them from ``awkward``."""
    g = rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, shape)
    return numpy.where(rng.random(shape) < 0.1, awkward(rng, shape, numpy.float64), g).astype(dtype)


@st.composite
def cases(draw):
    kernel, stride, padding = draw(window_geometry(max_kernel=4, pad_at_most_half=True))
    shape = draw(image_shape(kernel, padding, max_batch=3, max_channels=3))
    return kernel, stride, padding, shape, draw(seeds), draw(st.sampled_from([numpy.float64, numpy.float32]))


def sizes(shape, kernel, stride, padding):
    (n, c, h, w), (kh, kw), (sh, sw), (ph, pw) = shape, kernel, stride, padding
    oh, ow = output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)
    return [ctypes.c_longlong(v) for v in (c, h, w, kh, kw, sh, sw, ph, pw, oh, ow)], (n, c, oh, ow)


def host_forward(library, x, kernel, stride, padding):
    args, out_shape = sizes(x.shape, kernel, stride, padding)
    y, argmax = numpy.empty(out_shape, dtype=x.dtype), numpy.empty(out_shape, dtype=numpy.int16)
    getattr(library, f"forward_{x.dtype.name}")(ctypes.c_longlong(y.size), pointer(x), pointer(y), pointer(argmax),
                                                *args, ctypes.c_double(-numpy.inf))
    return y, argmax


def host_backward(library, gy, argmax, shape, kernel, stride, padding):
    args, _ = sizes(shape, kernel, stride, padding)
    gx = numpy.empty(shape, dtype=gy.dtype)
    getattr(library, f"backward_{gy.dtype.name}")(ctypes.c_longlong(gx.size), pointer(gy), pointer(argmax),
                                                  pointer(gx), *args)
    return gx


@settings(max_examples=80, deadline=None)
@given(cases())
def test_host_compiled_pooling_gives_the_arrays_bits(library, case):
    """Forward: the same maxima (NaN and signed-zero rules) and the same first argmax on ties; backward:
    the same sums in the same order (overlapping windows, stride < kernel, included)."""
    kernel, stride, padding, shape, seed, dtype = case
    rng = numpy.random.default_rng(seed)
    x = awkward(rng, shape, dtype)
    layer = MaxPool2D(kernel, stride, padding)
    with numpy.errstate(invalid="ignore"):
        expected = layer.forward(x)
    y, argmax = host_forward(library, x, kernel, stride, padding)
    assert same(y, expected)
    assert (argmax == layer.argmax).all()
    gy = gradients(rng, expected.shape, dtype)
    with numpy.errstate(invalid="ignore"):
        want = numpy.ascontiguousarray(layer.backward(gy))
    assert same(host_backward(library, gy, argmax, shape, kernel, stride, padding), want)


@pytest.mark.parametrize("old, new", [("if (v > y) argmax = k;", "if (v >= y) argmax = k;"),
                                      ("(a > b || a != a) ? a : b", "(a > b || b != b) ? a : b")],
                         ids=["last argmax on ties", "NaN dropped"])
def test_a_pooling_with_other_tie_or_nan_rules_is_caught(tmp_path, old, new):
    """Negative controls: ≥ instead of > (the last offset wins ties); a maximum that drops a NaN."""
    wrong = pooling_kernels.PREAMBLE.replace(old, new)
    assert wrong != pooling_kernels.PREAMBLE
    library = compile_pooling(tmp_path, wrong)
    x = awkward(numpy.random.default_rng(0), (2, 3, 8, 8), numpy.float64)
    layer = MaxPool2D(2, 2)
    with numpy.errstate(invalid="ignore"):
        expected = layer.forward(x)
    y, argmax = host_forward(library, x, (2, 2), (2, 2), (0, 0))
    assert not (same(y, expected) and (argmax == layer.argmax).all())


@pytest.mark.parametrize("kernels", [True, False], ids=["kernels", "array code"])
@pytest.mark.parametrize("dtype", [numpy.float64, numpy.float32])
def test_cupy_gives_the_arrays_bits(dtype, kernels, monkeypatch, cupy_backend):
    """The CUDA kernels give NumPy's bits; CuPy's array code the same values (comparisons, maxima and
    additions in the same order)."""
    cupy = cupy_backend
    launches = record_calls(monkeypatch, pooling_kernels, "maxpool_forward", "maxpool_backward")
    rng = numpy.random.default_rng(1)
    with backend.use_fused_kernels(kernels), numpy.errstate(invalid="ignore"):
        for kernel, stride, padding, shape in [((2, 2), (2, 2), (0, 0), (4, 3, 12, 12)),
                                               ((3, 2), (1, 1), (1, 1), (2, 2, 7, 9)),
                                               ((3, 3), (2, 3), (1, 0), (3, 1, 8, 8))]:
            x = awkward(rng, shape, dtype)
            host, device = MaxPool2D(kernel, stride, padding), MaxPool2D(kernel, stride, padding)
            expected = host.forward(x)
            view = strided(cupy, x)
            assert not view.flags.c_contiguous                 # a layer's input is often a view like this
            y = device.forward(view)
            assert (cupy.asnumpy(device.argmax) == host.argmax).all()
            gy = gradients(rng, expected.shape, dtype)
            want = numpy.ascontiguousarray(host.backward(gy))
            gx = cupy.asnumpy(device.backward(cupy.asarray(gy)))
            if kernels:
                assert same(cupy.asnumpy(y), expected) and same(gx, want)
            else:       # CuPy's maximum need not pick NumPy's zero on a ±0 tie: values, NaN as NaN
                numpy.testing.assert_array_equal(cupy.asnumpy(y), expected)
                numpy.testing.assert_array_equal(gx, want)
        if kernels:
            with pytest.raises(ValueError, match="does not match"):   # a gradient of another shape
                device.backward(cupy.asarray(gy[:, :, :-1]))
    assert sorted(set(launches)) == (["maxpool_backward", "maxpool_forward"] if kernels else [])
