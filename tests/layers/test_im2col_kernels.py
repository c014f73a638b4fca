"""im2col and col2im as CUDA kernels (``minidnn/layers/im2col_kernels.py``) give the array
versions' bits: their C++ source compiled for the host here (hypothesis choosing shapes, kernel
sizes, strides and paddings), the kernels themselves on CuPy where a GPU is there.
"""
import ctypes

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidnn import backend
from minidnn.layers import im2col_kernels
from minidnn.layers.im2col import col2im, im2col, output_size

from support.arrays import image_shape, seeds, strided, window_geometry
from support.host_kernels import bits, compile_host, pointer, record_calls

SIZES = "long long C, long long N, long long H, long long W, long long KH, long long KW, long long SH, long long SW, " \
        "long long PH, long long PW, long long OH, long long OW"
HOST = r"""
%(preamble)s
template <typename T>
static void gather(long long total, const T* x, T* cols, %(sizes)s, double pad) {
    for (long long i = 0; i < total; ++i) {
        T& col = cols[i];
        %(im2col)s
    }
}
template <typename T>
static void scatter(long long total, const T* col, T* xs, %(sizes)s) {
    for (long long i = 0; i < total; ++i) {
        T& x = xs[i];
        %(col2im)s
    }
}
#define FORWARD(T, name) extern "C" void name(long long total, const T* x, T* cols, %(sizes)s, double pad) \
    { gather<T>(total, x, cols, %(args)s, pad); }
#define BACKWARD(T, name) extern "C" void name(long long total, const T* col, T* xs, %(sizes)s) \
    { scatter<T>(total, col, xs, %(args)s); }
FORWARD(double, im2col_float64) FORWARD(float, im2col_float32)
BACKWARD(double, col2im_float64) BACKWARD(float, col2im_float32)
"""


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    source = HOST % {"preamble": im2col_kernels.PREAMBLE, "sizes": SIZES, "args": im2col_kernels.ARGS,
                     "im2col": im2col_kernels.IM2COL[2], "col2im": im2col_kernels.COL2IM[2]}
    return compile_host(tmp_path_factory.mktemp("im2col"), source)


@st.composite
def cases(draw):
    kernel, stride, padding = draw(window_geometry(max_kernel=4))
    shape = draw(image_shape(kernel, padding, max_batch=3, max_channels=3))
    return kernel, stride, padding, shape, draw(seeds), draw(st.sampled_from([numpy.float64, numpy.float32]))


def sizes(shape, kernel, stride, padding):
    (n, c, h, w), (kh, kw), (sh, sw), (ph, pw) = shape, kernel, stride, padding
    oh, ow = output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)
    return [ctypes.c_longlong(v) for v in (c, n, h, w, kh, kw, sh, sw, ph, pw, oh, ow)], (oh, ow)


@settings(max_examples=60, deadline=None)
@given(cases())
def test_host_compiled_im2col_gives_the_arrays_bits(library, case):
    kernel, stride, padding, shape, seed, dtype = case
    x = numpy.random.default_rng(seed).standard_normal(shape).astype(dtype)
    expected = im2col(x, *kernel, *stride, *padding, pad_value=-7.0)
    ours = numpy.empty_like(expected)
    args, _ = sizes(shape, kernel, stride, padding)
    getattr(library, f"im2col_{x.dtype.name}")(ctypes.c_longlong(ours.size), pointer(x), pointer(ours), *args,
                                               ctypes.c_double(-7.0))
    assert (bits(ours) == bits(expected)).all()


@settings(max_examples=60, deadline=None)
@given(cases())
def test_host_compiled_col2im_gives_the_arrays_bits(library, case):
    """The same sums in the same order: overlapping windows (stride < kernel) included."""
    kernel, stride, padding, shape, seed, dtype = case
    args, (oh, ow) = sizes(shape, kernel, stride, padding)
    n, c, h, w = shape
    col = numpy.random.default_rng(seed).standard_normal((c, *kernel, n, oh, ow)).astype(dtype)
    expected = col2im(col, h, w, *stride, *padding)
    ours = numpy.empty(shape, dtype=dtype)
    getattr(library, f"col2im_{col.dtype.name}")(ctypes.c_longlong(ours.size), pointer(col), pointer(ours), *args)
    assert (bits(ours) == bits(expected)).all()


def test_a_col2im_summing_in_another_order_is_caught(tmp_path):
    """Negative control: adding the kernel offsets in reverse order changes the last bits of overlaps."""
    wrong = im2col_kernels.PREAMBLE.replace("for (long long ki = 0; ki < KH; ++ki)",
                                            "for (long long ki = KH - 1; ki >= 0; --ki)")
    assert wrong != im2col_kernels.PREAMBLE
    source = HOST % {"preamble": wrong, "sizes": SIZES, "args": im2col_kernels.ARGS,
                     "im2col": im2col_kernels.IM2COL[2], "col2im": im2col_kernels.COL2IM[2]}
    library = compile_host(tmp_path, source)
    kernel, stride, padding, shape = (5, 5), (1, 1), (2, 2), (2, 3, 9, 9)
    args, (oh, ow) = sizes(shape, kernel, stride, padding)
    col = numpy.random.default_rng(0).standard_normal((3, 5, 5, 2, oh, ow))
    ours = numpy.empty(shape)
    library.col2im_float64(ctypes.c_longlong(ours.size), pointer(col), pointer(ours), *args)
    assert not (bits(ours) == bits(col2im(col, 9, 9, 1, 1, 2, 2))).all()
    numpy.testing.assert_allclose(ours, col2im(col, 9, 9, 1, 1, 2, 2), rtol=1e-12)   # only the rounding


@pytest.mark.parametrize("kernels", [True, False], ids=["kernels", "array code"])
@pytest.mark.parametrize("dtype", [numpy.float64, numpy.float32])
def test_cupy_gives_the_arrays_bits(dtype, kernels, monkeypatch, cupy_backend):
    """The CUDA kernels, and CuPy's array code (copies and additions in the same order)."""
    cupy = cupy_backend
    launches = record_calls(monkeypatch, im2col_kernels, "im2col", "col2im")
    rng = numpy.random.default_rng(1)
    with backend.use_fused_kernels(kernels):
        for kernel, stride, padding, shape in [((5, 5), (1, 1), (0, 0), (4, 3, 12, 12)),
                                               ((3, 2), (2, 1), (1, 2), (2, 2, 7, 9)),
                                               ((2, 2), (3, 3), (1, 0), (3, 1, 8, 8))]:
            x = rng.standard_normal(shape).astype(dtype)
            expected = im2col(x, *kernel, *stride, *padding, pad_value=-7.0)
            col = im2col(cupy.asarray(x), *kernel, *stride, *padding, pad_value=-7.0)
            assert (bits(cupy.asnumpy(col)) == bits(expected)).all()
            view = strided(cupy, x)
            assert not view.flags.c_contiguous                 # a layer's input is often a view like this
            assert (bits(cupy.asnumpy(im2col(view, *kernel, *stride, *padding, pad_value=-7.0)))
                    == bits(expected)).all()
            g = rng.standard_normal(expected.shape).astype(dtype)
            back = col2im(cupy.asarray(g), shape[2], shape[3], *stride, *padding)
            want = numpy.ascontiguousarray(col2im(g, shape[2], shape[3], *stride, *padding))
            assert (bits(cupy.asnumpy(back)) == bits(want)).all()
        if kernels:
            with pytest.raises(ValueError, match="do not fit"):       # columns of another geometry
                col2im(cupy.asarray(g), shape[2] + 3, shape[3], *stride, *padding)
    assert sorted(set(launches)) == (["col2im", "im2col"] if kernels else [])    # which code ran
