"""Softmax cross-entropy and its gradient as one CUDA kernel, for CuPy.

The array version (``losses.softmax_cross_entropy_rows``) is log-softmax (a maximum, a
subtraction, an exponential, a sum, a logarithm, a subtraction), a gather of each row's label
and its negation, an exponential, a subtract-one at the labels and the scaling: 14 kernel
launches for a (128, 10) batch (``bench/launch_count.py``), each far too small to keep a GPU
busy. Here one thread per row does all of it, in the same order of operations. The row's sum
Σ e^shifted runs left to right where NumPy sums pairwise, and the exponential and logarithm
are CUDA's, so the results agree with NumPy's to rounding, not bit for bit (the tests compile
this source for the host and compare). A label outside [0, K) gives a NaN row instead of
reading outside it (NumPy's indexing raises for t ≥ K and wraps t < 0 around; CuPy's wraps both).
"""

from . import backend
from .layers.pooling_kernels import NUMPY_MAXIMUM

PREAMBLE = NUMPY_MAXIMUM + r"""
// Row `row` of z (N, K):  shifted = z - max z,  logp = shifted - log sum_k exp(shifted_k)  (log-softmax),
// g_k = (exp(logp_k) - [k = t]) * scale;  returns nll = -logp_t
template <typename F, typename Z, typename G>
__device__ F softmax_cross_entropy_row(Z z, G g, long long row, long long K, long long t, F scale, F invalid) {
    const long long base = row * K;
    F top = F(z[base]);
    for (long long k = 1; k < K; ++k) top = numpy_maximum(top, F(z[base + k]));
    F total = F(0);
    for (long long k = 0; k < K; ++k) total = total + exp(F(z[base + k]) - top);
    const F log_total = log(total);
    const bool valid = t >= 0 && t < K;
    F nll = invalid;
    for (long long k = 0; k < K; ++k) {
        const F logp = (F(z[base + k]) - top) - log_total;
        F p = exp(logp);
        if (k == t) {
            nll = -logp;
            p = p - F(1);
        }
        g[base + k] = valid ? p * scale : invalid;
    }
    return nll;
}
"""
IN_PARAMS = "raw T z, I t, int64 K, float64 scale, float64 invalid"
OUT_PARAMS = "T nll, raw T g"
OPERATION = "nll = softmax_cross_entropy_row<T>(z, g, i, K, (long long)t, T(scale), T(invalid));"
OPTIONS = ("--fmad=false",)      # no contraction of a*b + c, as the other kernels
KERNELS = {"softmax_cross_entropy": (IN_PARAMS, OUT_PARAMS, OPERATION)}


def softmax_cross_entropy(logits, labels, grad_scale):
    """(nll (N,), (softmax(z) − onehot(t))·grad_scale (N, K)) for logits (N, K), integer labels (N,)."""
    import cupy
    n, k = logits.shape
    nll = cupy.empty(n, dtype=logits.dtype)
    grad = cupy.empty((n, k), dtype=logits.dtype)
    kernel = backend.elementwise_kernel("softmax_cross_entropy", *KERNELS["softmax_cross_entropy"], PREAMBLE, OPTIONS)
    kernel(cupy.ascontiguousarray(logits).ravel(), labels, k, 1.0 if grad_scale is None else float(grad_scale),
           float("nan"), nll, grad)
    return nll, grad
