"""Max pooling's forward and backward as one CUDA kernel each, for CuPy.

The array version (``pooling.py``) walks the KH·KW kernel offsets: forward five small kernels per
offset (a comparison, a maximum, three for the argmax), backward four per offset (a comparison, a
product, a strided add and its write-back), 34 launches per layer for a 2×2 window
(``bench/launch_count.py``), each tiny at a training batch of 128.
Here forward is one thread per output (its window's maximum and first argmax) and backward one
thread per input pixel (the sum, over the offsets in the array version's order, of gy · [argmax
= offset] from the windows that read it). Same results, bit for bit, signed zeros included (a NaN
stays a NaN; its sign and payload are the hardware's): the tests compile this source for the host
and compare it with the array version. One exception on the GPU: CuPy compiles with flush-to-zero,
so in float32 a subnormal (below 1.2e-38 in magnitude) counts as zero in the comparisons and the
backward's products, where NumPy keeps it.
"""

from .. import backend
from .im2col_kernels import WINDOW_READING

# numpy.maximum's rule on x86: a NaN operand (the first if both are), else the larger, the second on ties
NUMPY_MAXIMUM = r"""
template <typename F> __device__ inline F numpy_maximum(F a, F b) { return (a > b || a != a) ? a : b; }
"""

# x (N, C, H, W) C-ordered, its windows read ``pad`` (−∞) outside it; y, argmax (N, C, OH, OW).
PREAMBLE = NUMPY_MAXIMUM + WINDOW_READING + r"""
// y[n, c, oh, ow] = max over the offsets k = (ki, kj), in order, of x_pad[n, c, SH*oh + ki, SW*ow + kj];
// argmax = the first k where the running maximum grew (the array version's  view > y)
template <typename F, typename X>
__device__ void maxpool_entry(X x, long long idx, long long C, long long H, long long W, long long KH, long long KW,
                              long long SH, long long SW, long long PH, long long PW, long long OH, long long OW,
                              F pad, F& y, short& argmax) {
    const long long ow = idx % OW; idx /= OW;
    const long long oh = idx % OH; idx /= OH;
    const long long c = idx % C;
    const long long n = idx / C;
    for (long long ki = 0; ki < KH; ++ki) {
        for (long long kj = 0; kj < KW; ++kj) {
            const long long h = SH * oh + ki - PH, w = SW * ow + kj - PW;
            const F v = (h >= 0 && h < H && w >= 0 && w < W) ? F(x[((n * C + c) * H + h) * W + w]) : pad;
            const short k = short(ki * KW + kj);
            if (k == 0) {
                y = v;
                argmax = 0;
            } else {
                if (v > y) argmax = k;
                y = numpy_maximum(y, v);
            }
        }
    }
}

// gx[n, c, h, w] = sum over the offsets k, in order, of gy[n, c, oh, ow] * [argmax[n, c, oh, ow] = k]
// for the window (oh, ow) that reads pixel (h, w) at offset k (sum_over_windows_reading, as col2im)
template <typename F, typename G, typename A>
__device__ F maxpool_grad_entry(G gy, A argmax, long long idx, long long C, long long H, long long W, long long KH,
                                long long KW, long long SH, long long SW, long long PH, long long PW, long long OH,
                                long long OW) {
    return sum_over_windows_reading<F>(idx, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW,
        [&](long long n, long long c, long long ki, long long kj, long long oh, long long ow) {
            const long long out = ((n * C + c) * OH + oh) * OW + ow;
            return F(gy[out]) * F(argmax[out] == ki * KW + kj);
        });
}
"""
SIZES = "int64 C, int64 H, int64 W, int64 KH, int64 KW, int64 SH, int64 SW, int64 PH, int64 PW, int64 OH, int64 OW"
ARGS = "C, H, W, KH, KW, SH, SW, PH, PW, OH, OW"
FORWARD = ("raw T x, " + SIZES + ", float64 pad", "T y, int16 argmax",
           f"maxpool_entry<T>(x, i, {ARGS}, T(pad), y, argmax);")
BACKWARD = ("raw T gy, raw int16 argmax, " + SIZES, "T gx", f"gx = maxpool_grad_entry<T>(gy, argmax, i, {ARGS});")


OPTIONS = ("--fmad=false",)      # no contraction of a*b + c (here exact anyway: b is 0 or 1)


KERNELS = {"maxpool_forward": FORWARD, "maxpool_backward": BACKWARD}


def _kernel(name):
    return backend.elementwise_kernel(name, *KERNELS[name], PREAMBLE, OPTIONS)


def maxpool_forward(x, kernel, stride, padding, oh, ow):
    """x (N, C, H, W) -> (y, argmax (int16)), both (N, C, OH, OW), as ``MaxPool2D.forward``."""
    import cupy
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    y = cupy.empty((n, c, oh, ow), dtype=x.dtype)
    argmax = cupy.empty((n, c, oh, ow), dtype=cupy.int16)
    _kernel("maxpool_forward")(cupy.ascontiguousarray(x).ravel(), c, h, w, kh, kw, sh, sw, ph, pw, oh, ow,
                                        float("-inf"), y, argmax)
    return y, argmax


def maxpool_backward(gy, argmax, x_shape, kernel, stride, padding):
    """gy, argmax (N, C, OH, OW) -> gx (N, C, H, W), as ``MaxPool2D.backward``."""
    import cupy
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    oh, ow = argmax.shape[-2:]
    if gy.shape != argmax.shape:
        raise ValueError(f"MaxPool2D backward: gy {tuple(gy.shape)} does not match the forward's output "
                         f"{tuple(argmax.shape)}")
    gx = cupy.empty((n, c, h, w), dtype=gy.dtype)
    _kernel("maxpool_backward")(cupy.ascontiguousarray(gy).ravel(), cupy.ascontiguousarray(argmax).ravel(),
                                          c, h, w, kh, kw, sh, sw, ph, pw, oh, ow, gx)
    return gx
