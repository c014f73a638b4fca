"""im2col / col2im: convolution as one matrix product.

A column array holds, for every kernel offset (i, j) and output position (oh, ow), the
input pixel x_pad[n, c, i + s·oh, j + s·ow], laid out channel-major:

    col: (C, KH, KW, N, OH, OW),   OH = (H + 2p − KH) // s + 1,

so that col.reshape(C·KH·KW, N·OH·OW) is the right-hand factor of the convolution's
matrix product with no transposing copy. im2col loops over the KH·KW kernel offsets only
(each a strided slice of every pixel of every example at once); col2im is its adjoint, a
scatter-add over the same slices, so overlapping windows (stride < kernel) add up as the
chain rule requires. On CuPy each is one CUDA kernel with the same results (``im2col_kernels.py``).
"""
from .. import backend


def output_size(size, kernel, stride, pad):
    out = (size + 2 * pad - kernel) // stride + 1
    if out < 1:
        raise ValueError(f"kernel {kernel} with stride {stride} and padding {pad} "
                         f"does not fit an input of size {size}")
    return out


def window(k_i, stride, out):
    """The slice of a padded axis that kernel offset k_i sees at outputs 0 … out−1."""
    return slice(k_i, k_i + stride * out, stride)


def im2col(x, kh, kw, sh, sw, ph, pw, pad_value=0.0):
    """x: (N, C, H, W) -> col: (C, KH, KW, N, OH, OW)."""
    xp = backend.get_array_module(x)
    n, c, h, w = x.shape
    oh, ow = output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)
    if backend.fused_kernels(xp) and x.dtype.char in "fd":      # CuPy: one gather kernel, the same values
        from . import im2col_kernels
        return im2col_kernels.im2col(x, kh, kw, sh, sw, ph, pw, oh, ow, pad_value)
    x = x.transpose(1, 0, 2, 3)                                   # (C, N, H, W), a view
    if ph or pw:
        x = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), mode="constant", constant_values=pad_value)
    col = xp.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            col[:, i, j] = x[:, :, window(i, sh, oh), window(j, sw, ow)]
    return col


def col2im(col, h, w, sh, sw, ph, pw):
    """Adjoint of im2col: col (C, KH, KW, N, OH, OW) -> x (N, C, H, W), overlaps summed."""
    xp = backend.get_array_module(col)
    c, kh, kw, n, oh, ow = col.shape
    if backend.fused_kernels(xp) and col.dtype.char in "fd":    # CuPy: one gather-sum kernel, the same sums
        from . import im2col_kernels
        return im2col_kernels.col2im(col, h, w, sh, sw, ph, pw)
    x = xp.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=col.dtype)
    for i in range(kh):
        for j in range(kw):
            x[:, :, window(i, sh, oh), window(j, sw, ow)] += col[:, i, j]
    return x[:, :, ph:ph + h, pw:pw + w].transpose(1, 0, 2, 3)


def pair(v, name):
    """An int or a pair of ints as (vertical, horizontal)."""
    if isinstance(v, int):
        return (v, v)
    v = tuple(int(a) for a in v)
    if len(v) != 2:
        raise ValueError(f"{name} must be an int or a pair, got {v}")
    return v
