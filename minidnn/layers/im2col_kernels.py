"""im2col and col2im as one CUDA kernel each, for CuPy.

The array versions (``im2col.py``) are a pad plus one strided copy per kernel offset (25 for a
5×5 kernel), and a zero fill plus one strided scatter-add per offset; at a training batch of 128
each is a small kernel launch. Here im2col is one gather (every column entry reads its pixel, or
the pad value) and col2im one gather-sum (every pixel adds the column entries that read it, in
the array version's order of kernel offsets, so the sums round the same). Same results, bit for
bit: the tests compile this source for the host and compare it with the array versions.
"""

from .. import backend
from .im2col import output_size

# The adjoint of reading pixels through windows, shared with max pooling's backward. Along one axis,
# the window that reads input position p at kernel offset k (padding P, stride S, O windows), or -1
# where none does; and for pixel idx = (n, c, h, w) the sum, over the kernel offsets (ki, kj) in
# order, of term(n, c, ki, kj, oh, ow) for the window (oh, ow) that reads it there.
WINDOW_READING = r"""
__device__ inline long long window_reading(long long p, long long P, long long k, long long S, long long O) {
    const long long d = p + P - k;
    return (d < 0 || d % S != 0 || d / S >= O) ? -1 : d / S;
}

template <typename F, typename Term>
__device__ F sum_over_windows_reading(long long idx, long long C, long long H, long long W, long long KH, long long KW,
                                      long long SH, long long SW, long long PH, long long PW, long long OH,
                                      long long OW, Term term) {
    const long long w = idx % W; idx /= W;                  // pixel idx of an (N, C, H, W) array
    const long long h = idx % H; idx /= H;
    const long long c = idx % C;
    const long long n = idx / C;
    F sum = F(0);
    for (long long ki = 0; ki < KH; ++ki) {
        const long long oh = window_reading(h, PH, ki, SH, OH);
        if (oh < 0) continue;
        for (long long kj = 0; kj < KW; ++kj) {
            const long long ow = window_reading(w, PW, kj, SW, OW);
            if (ow < 0) continue;
            sum = sum + term(n, c, ki, kj, oh, ow);
        }
    }
    return sum;
}
"""

# Index arithmetic on int64; F is the float type; X and Col anything indexable, passed by value
# (a CuPy CArray, a pointer).
PREAMBLE = WINDOW_READING + r"""
// col[c, ki, kj, n, oh, ow] = x_pad[n, c, ki + sh*oh, kj + sw*ow]: x (N, C, H, W) C-ordered, pad outside
template <typename F, typename X>
__device__ F im2col_entry(X x, long long idx, long long C, long long N, long long H, long long W,
                          long long KH, long long KW, long long SH, long long SW, long long PH, long long PW,
                          long long OH, long long OW, F pad) {
    const long long ow = idx % OW; idx /= OW;
    const long long oh = idx % OH; idx /= OH;
    const long long n = idx % N; idx /= N;
    const long long kj = idx % KW; idx /= KW;
    const long long ki = idx % KH;
    const long long c = idx / KH;
    const long long h = ki + SH * oh - PH, w = kj + SW * ow - PW;
    return (h >= 0 && h < H && w >= 0 && w < W) ? F(x[((n * C + c) * H + h) * W + w]) : pad;
}

// x[n, c, h, w] = sum over the kernel offsets (ki, kj), in that order, of the column entries that
// read pixel (h, w): col (C, KH, KW, N, OH, OW) C-ordered
template <typename F, typename Col>
__device__ F col2im_entry(Col col, long long idx, long long C, long long N, long long H, long long W,
                          long long KH, long long KW, long long SH, long long SW, long long PH, long long PW,
                          long long OH, long long OW) {
    return sum_over_windows_reading<F>(idx, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW,
        [&](long long n, long long c, long long ki, long long kj, long long oh, long long ow) {
            return F(col[((((c * KH + ki) * KW + kj) * N + n) * OH + oh) * OW + ow]);
        });
}
"""
SIZES = "int64 C, int64 N, int64 H, int64 W, int64 KH, int64 KW, int64 SH, int64 SW, int64 PH, int64 PW, int64 OH, int64 OW"
ARGS = "C, N, H, W, KH, KW, SH, SW, PH, PW, OH, OW"
IM2COL = ("raw T x, " + SIZES + ", float64 pad", "T col", f"col = im2col_entry<T>(x, i, {ARGS}, T(pad));")
COL2IM = ("raw T col, " + SIZES, "T x", f"x = col2im_entry<T>(col, i, {ARGS});")

OPTIONS = ("--fmad=false",)      # copies and sums only; as the other kernels
KERNELS = {"im2col": IM2COL, "col2im": COL2IM}


def _kernel(name):
    return backend.elementwise_kernel(name, *KERNELS[name], PREAMBLE, OPTIONS)


def im2col(x, kh, kw, sh, sw, ph, pw, oh, ow, pad_value):
    """x (N, C, H, W) -> col (C, KH, KW, N, OH, OW), as ``im2col.im2col``."""
    import cupy
    n, c, h, w = x.shape
    col = cupy.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
    _kernel("im2col")(cupy.ascontiguousarray(x).ravel(), c, n, h, w, kh, kw, sh, sw, ph, pw, oh, ow,
                              float(pad_value), col)
    return col


def col2im(col, h, w, sh, sw, ph, pw):
    """col (C, KH, KW, N, OH, OW) -> x (N, C, H, W), overlaps summed, as ``im2col.col2im``."""
    import cupy
    c, kh, kw, n, oh, ow = col.shape
    if (output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)) != (oh, ow):
        raise ValueError(f"col2im: columns {col.shape} do not fit a {h}×{w} image with stride {(sh, sw)}, "
                         f"padding {(ph, pw)}")
    x = cupy.empty((n, c, h, w), dtype=col.dtype)
    _kernel("col2im")(cupy.ascontiguousarray(col).ravel(), c, n, h, w, kh, kw, sh, sw, ph, pw, oh, ow, x)
    return x
