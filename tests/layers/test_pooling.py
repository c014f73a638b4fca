"""MaxPool2D against a naive loop implementation, and against finite differences."""
import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minidnn
from minidnn.gradcheck import check_layer
from minidnn.layers import MaxPool2D
from support.arrays import distinct, image_shape, seeds, window_geometry


def naive_maxpool(x, kernel, stride, padding):
    """y[n,c,oh,ow] = max over the window (padding never wins); gradient routes to the first argmax.

    Returns y and, per output, the (r, s) input position of its maximum.
    """
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    N, C, H, W = x.shape
    OH, OW = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    y, where = numpy.zeros((N, C, OH, OW)), {}
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                for ow in range(OW):
                    best = None
                    for i in range(kh):
                        for j in range(kw):
                            r, s = sh * oh + i - ph, sw * ow + j - pw
                            inside = 0 <= r < H and 0 <= s < W
                            if inside and (best is None or x[n, c, r, s] > x[n, c, best[0], best[1]]):
                                best = (r, s)
                    y[n, c, oh, ow] = x[n, c, best[0], best[1]]
                    where[n, c, oh, ow] = best
    return y, where


def naive_maxpool_backward(x_shape, where, gy):
    gx = numpy.zeros(x_shape)
    for (n, c, oh, ow), (r, s) in where.items():
        gx[n, c, r, s] += gy[n, c, oh, ow]
    return gx


@st.composite
def pool_case(draw, max_extra=3):
    kernel, stride, padding = draw(window_geometry())
    return draw(image_shape(kernel, padding, max_extra=max_extra)), kernel, stride, padding, draw(seeds)


@given(pool_case())
def test_forward_and_backward_match_naive_loops(case):
    shape, kernel, stride, padding, seed = case
    rng = numpy.random.default_rng(seed)
    layer = MaxPool2D(kernel, stride, padding)
    x = distinct(rng, shape)
    y = layer.forward(x)
    want_y, where = naive_maxpool(x, kernel, stride, padding)
    numpy.testing.assert_array_equal(y, want_y)            # a selection: exact
    assert y.shape[1:] == layer.output_shape(shape[1:])
    gy = rng.standard_normal(y.shape)
    numpy.testing.assert_allclose(layer.backward(gy), naive_maxpool_backward(shape, where, gy), rtol=1e-12, atol=1e-15)


@given(pool_case(max_extra=2))
def test_gradients_match_finite_differences(case):
    """Inputs are spaced 0.1 apart: no window has a tie within the finite-difference step."""
    shape, kernel, stride, padding, seed = case
    with minidnn.use_dtype("float64"):
        report = check_layer(MaxPool2D(kernel, stride, padding), distinct(numpy.random.default_rng(seed), shape),
                             seed=seed)
    report.assert_ok()


def test_a_tie_sends_the_gradient_to_one_input_only():
    layer = MaxPool2D(2)
    x = numpy.ones((1, 1, 2, 2))
    layer.forward(x)
    gx = layer.backward(numpy.full((1, 1, 1, 1), 3.0))
    assert gx.sum() == 3.0 and (gx != 0).sum() == 1


def test_stride_defaults_to_the_kernel_and_shapes_are_checked():
    layer = MaxPool2D((2, 3))
    assert layer.stride == (2, 3) and layer.output_shape((4, 6, 9)) == (4, 3, 3)
    with pytest.raises(ValueError, match=r"expected input \(N, C, H, W\)"):
        layer.forward(numpy.zeros((2, 6), numpy.float32))


def test_padding_as_large_as_the_kernel_is_refused():
    """A window of padding only would have no maximum (−∞ out, gradient lost)."""
    with pytest.raises(ValueError, match="padding"):
        MaxPool2D(2, padding=2)
    with pytest.raises(ValueError, match="padding"):
        MaxPool2D((3, 1), padding=(1, 1))


def test_float32_in_float32_out():
    layer = MaxPool2D(2, 1, 1)
    x = distinct(numpy.random.default_rng(0), (2, 3, 4, 5)).astype(numpy.float32)
    y = layer.forward(x)
    assert y.dtype == numpy.float32 and layer.backward(numpy.ones_like(y)).dtype == numpy.float32
