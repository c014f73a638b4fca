"""Data augmentation while training: random whole-pixel shifts of the images.

Not in the paper. The trainer applies it to each training batch only (validation, test and
the attacks see the images as they are), drawing the offsets from its own seeded Generator,
so a resumed run draws the same shifts as an uninterrupted one.
"""
import numpy

from .. import backend


class RandomShift:
    """Move each image by (dy, dx), each uniform on {−s, …, s}; pixels shifted in are 0.

        out[n, c, i, j] = x[n, c, i + dy_n, j + dx_n]   if 0 ≤ i + dy_n < H and 0 ≤ j + dx_n < W,
                          0                             otherwise.

    x: (N, C, H, W), or flat (N, C·H·W) with ``image_shape`` = (C, H, W) saying how to read it.
    The output has x's shape, dtype and array module.
    """

    def __init__(self, max_shift, image_shape=(1, 28, 28)):
        if isinstance(max_shift, bool) or not isinstance(max_shift, (int, numpy.integer)) or max_shift < 0:
            raise ValueError(f"RandomShift: max_shift must be an integer ≥ 0, got {max_shift!r}")
        image_shape = tuple(int(d) for d in image_shape)
        if len(image_shape) != 3 or min(image_shape) < 1:
            raise ValueError(f"RandomShift: image_shape must be (C, H, W), got {image_shape}")
        if max_shift >= min(image_shape[1:]):
            raise ValueError(f"RandomShift: max_shift {max_shift} would move whole {image_shape[1]}x{image_shape[2]} "
                             "images out of view; use fewer pixels than the image's height and width")
        self.max_shift, self.image_shape = int(max_shift), image_shape

    def __call__(self, x, rng):
        """x shifted; ``rng``: the numpy.random.Generator the offsets come from (2·N draws)."""
        if x.shape[1:] not in (self.image_shape, (int(numpy.prod(self.image_shape)),)):
            raise ValueError(f"RandomShift: a batch of shape {tuple(x.shape)} is neither (N, *{self.image_shape}) "
                             f"nor (N, {int(numpy.prod(self.image_shape))})")
        if self.max_shift == 0:
            return x
        offsets = rng.integers(-self.max_shift, self.max_shift + 1, size=(2, x.shape[0]))
        return shift_images(x.reshape((x.shape[0],) + self.image_shape), offsets).reshape(x.shape)

    def config(self):
        return {"type": type(self).__name__, "max_shift": self.max_shift, "image_shape": list(self.image_shape)}


def shift_images(x, offsets):
    """x: (N, C, H, W); offsets: host int array (2, N) of (dy, dx), each |·| ≤ s. Zero-filled shift.

    One gather from x padded by s zeros on every side: row i of image n reads padded row i + s + dy_n.
    """
    xp = backend.get_array_module(x)
    n, _, h, w = x.shape
    s = int(numpy.abs(offsets).max(initial=0))
    padded = xp.pad(x, ((0, 0), (0, 0), (s, s), (s, s)))
    rows = xp.asarray(numpy.arange(h)[None, :] + s + offsets[0][:, None])      # (N, H)
    cols = xp.asarray(numpy.arange(w)[None, :] + s + offsets[1][:, None])      # (N, W)
    images = xp.asarray(numpy.arange(n))
    return padded[images[:, None, None, None], xp.arange(x.shape[1])[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]
