"""im2col gathers every window; col2im is its adjoint (a scatter-add)."""
import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidnn.layers.im2col import col2im, im2col, output_size, pair
from support.arrays import image_shape, seeds, window_geometry


@st.composite
def geometry_and_shape(draw):
    kernel, stride, padding = draw(window_geometry(max_kernel=4))
    return kernel, stride, padding, draw(image_shape(kernel, padding, max_batch=3, max_channels=3)), draw(seeds)


@given(geometry_and_shape())
def test_columns_hold_the_padded_windows(case):
    (kh, kw), (sh, sw), (ph, pw), shape, seed = case
    x = numpy.random.default_rng(seed).standard_normal(shape)
    col = im2col(x, kh, kw, sh, sw, ph, pw, pad_value=-7.0)
    n, c, h, w = shape
    oh, ow = output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)
    assert col.shape == (c, kh, kw, n, oh, ow)
    for i in range(kh):
        for j in range(kw):
            for a in range(oh):
                for b in range(ow):
                    r, s = sh * a + i - ph, sw * b + j - pw
                    inside = 0 <= r < h and 0 <= s < w
                    want = x[:, :, r, s].T if inside else numpy.full((c, n), -7.0)
                    numpy.testing.assert_array_equal(col[:, i, j, :, a, b], want)


@given(geometry_and_shape())
def test_col2im_is_the_adjoint_of_im2col(case):
    """⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩ for every x and c: overlapping windows are summed."""
    (kh, kw), (sh, sw), (ph, pw), shape, seed = case
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal(shape)
    cols = rng.standard_normal(im2col(x, kh, kw, sh, sw, ph, pw).shape)
    left = numpy.vdot(im2col(x, kh, kw, sh, sw, ph, pw), cols)
    right = numpy.vdot(x, col2im(cols, shape[2], shape[3], sh, sw, ph, pw))
    assert abs(left - right) <= 1e-12 * max(1.0, abs(left))


def test_output_size_and_pair():
    assert output_size(28, 5, 1, 0) == 24 and output_size(7, 3, 2, 1) == 4
    with pytest.raises(ValueError, match="does not fit an input of size 2"):
        output_size(2, 5, 1, 1)
    assert pair(3, "k") == (3, 3) and pair([2, 1], "k") == (2, 1)
    with pytest.raises(ValueError, match="stride"):
        pair((1, 2, 3), "stride")
