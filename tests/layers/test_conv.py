"""Conv2D against a naive loop implementation, and against finite differences."""
import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minidnn
from minidnn.gradcheck import check_layer
from minidnn.layers import Conv2D
from support.arrays import image_shape, seeds, window_geometry


def naive_conv(x, W, b, stride, padding):
    """y[n,f,oh,ow] = b[f] + Σ_{c,i,j} W[f,c,i,j] x_pad[n,c,sh·oh+i,sw·ow+j], one loop per index."""
    (sh, sw), (ph, pw) = stride, padding
    N, C, H, Wd = x.shape
    F, _, KH, KW = W.shape
    OH, OW = (H + 2 * ph - KH) // sh + 1, (Wd + 2 * pw - KW) // sw + 1
    y = numpy.zeros((N, F, OH, OW))
    for n in range(N):
        for f in range(F):
            for oh in range(OH):
                for ow in range(OW):
                    total = b[f]
                    for c in range(C):
                        for i in range(KH):
                            for j in range(KW):
                                r, s = sh * oh + i - ph, sw * ow + j - pw
                                if 0 <= r < H and 0 <= s < Wd:
                                    total += W[f, c, i, j] * x[n, c, r, s]
                    y[n, f, oh, ow] = total
    return y


def naive_conv_backward(x, W, gy, stride, padding):
    """gx, gW, gb by the same loops: each product's two factors receive gy times the other."""
    (sh, sw), (ph, pw) = stride, padding
    N, C, H, Wd = x.shape
    F, _, KH, KW = W.shape
    gx, gW, gb = numpy.zeros(x.shape), numpy.zeros(W.shape), numpy.zeros(F)
    for n in range(N):
        for f in range(F):
            for oh in range(gy.shape[2]):
                for ow in range(gy.shape[3]):
                    g = gy[n, f, oh, ow]
                    gb[f] += g
                    for c in range(C):
                        for i in range(KH):
                            for j in range(KW):
                                r, s = sh * oh + i - ph, sw * ow + j - pw
                                if 0 <= r < H and 0 <= s < Wd:
                                    gW[f, c, i, j] += g * x[n, c, r, s]
                                    gx[n, c, r, s] += g * W[f, c, i, j]
    return gx, gW, gb


@st.composite
def conv_case(draw, max_extra=3):
    kernel, stride, padding = draw(window_geometry())
    n, c, h, w = draw(image_shape(kernel, padding, max_extra=max_extra))
    return (n, c, h, w), draw(st.integers(1, 3)), kernel, stride, padding, draw(seeds)


@given(conv_case())
def test_forward_and_backward_match_naive_loops(case):
    shape, filters, kernel, stride, padding, seed = case
    rng = numpy.random.default_rng(seed)
    with minidnn.use_dtype("float64"):
        layer = Conv2D(shape[1], filters, kernel, stride=stride, padding=padding, rng=seed)
    layer.params["b"].data[...] = rng.standard_normal(filters)
    W, b = layer.params["W"].data, layer.params["b"].data
    x = rng.standard_normal(shape)
    y = layer.forward(x)
    numpy.testing.assert_allclose(y, naive_conv(x, W, b, stride, padding), rtol=1e-10, atol=1e-12)
    assert y.shape[1:] == layer.output_shape(shape[1:])
    gy = rng.standard_normal(y.shape)
    gx = layer.backward(gy)
    for got, want in zip((gx, layer.params["W"].grad, layer.params["b"].grad),
                         naive_conv_backward(x, W, gy, stride, padding)):
        numpy.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@given(conv_case(max_extra=2))
def test_gradients_match_finite_differences(case):
    shape, filters, kernel, stride, padding, seed = case
    rng = numpy.random.default_rng(seed)
    with minidnn.use_dtype("float64"):
        layer = Conv2D(shape[1], filters, kernel, stride=stride, padding=padding, rng=seed)
        check_layer(layer, rng.standard_normal(shape), seed=seed).assert_ok()


def test_float32_in_float32_out():
    layer = Conv2D(2, 3, (3, 2), stride=(2, 1), padding=1)
    x = numpy.random.default_rng(0).standard_normal((2, 2, 6, 5)).astype(numpy.float32)
    y = layer.forward(x)
    assert y.dtype == numpy.float32 and layer.backward(numpy.ones_like(y)).dtype == numpy.float32
    assert all(p.grad.dtype == numpy.float32 for p in layer.params.values())


def test_kernels_are_not_decayed_by_default():
    layer = Conv2D(1, 2, 3)
    assert not layer.params["W"].decay and not layer.params["b"].decay


def test_bad_inputs_and_geometry_are_named():
    with pytest.raises(ValueError, match=r"expected input \(N, 2, H, W\)"):
        Conv2D(2, 3, 3).forward(numpy.zeros((1, 1, 5, 5), numpy.float32))
    with pytest.raises(ValueError, match="does not fit"):
        Conv2D(1, 1, (5, 2)).forward(numpy.zeros((1, 1, 4, 4), numpy.float32))
    with pytest.raises(ValueError, match="kernel_size"):
        Conv2D(1, 1, (1, 2, 3))
