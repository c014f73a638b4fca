"""Test inputs that keep finite differences away from kinks, and hypothesis strategies for them."""
import math

import numpy
from hypothesis import strategies as st

seeds = st.integers(0, 2**32 - 1)


def away_from_zero(rng, shape, gap=0.1):
    """Standard normal values pushed at least ``gap`` away from 0 (ReLU's kink)."""
    x = rng.standard_normal(shape)
    return x + gap * numpy.where(x >= 0, 1.0, -1.0)


def distinct(rng, shape, spacing=0.1):
    """A random permutation of evenly spaced values: no ties anywhere (max-pool windows)."""
    n = math.prod(shape)
    return (rng.permutation(n) - (n - 1) / 2).reshape(shape) * spacing


@st.composite
def window_geometry(draw, max_kernel=3, max_stride=3, pad_at_most_half=False):
    """(kernel, stride, padding) pairs, each (vertical, horizontal): non-square kernels,
    strides that differ from the kernel, paddings (at most half the kernel for pooling)."""
    kernel = (draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel)))
    stride = (draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride)))
    limit = [k // 2 if pad_at_most_half else k - 1 for k in kernel]
    padding = (draw(st.integers(0, limit[0])), draw(st.integers(0, limit[1])))
    return kernel, stride, padding


@st.composite
def image_shape(draw, kernel, padding, max_batch=2, max_channels=2, max_extra=3):
    """(N, C, H, W) with H + 2p ≥ kernel, so at least one window fits."""
    n, c = draw(st.integers(1, max_batch)), draw(st.integers(1, max_channels))
    h = draw(st.integers(max(1, kernel[0] - 2 * padding[0]), kernel[0] + max_extra))
    w = draw(st.integers(max(1, kernel[1] - 2 * padding[1]), kernel[1] + max_extra))
    return n, c, h, w


def strided(module, x):
    """x copied to ``module`` (CuPy) as a non-contiguous view: every other column of a wider array,
    whatever x's shape (a transposed copy would be contiguous along axes of length one)."""
    wide = numpy.zeros(x.shape[:-1] + (2 * x.shape[-1],), dtype=x.dtype)
    wide[..., ::2] = x
    return module.asarray(wide)[..., ::2]
