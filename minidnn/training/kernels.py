"""SGD with momentum as one CUDA kernel per parameter, for CuPy.

On a GPU a training step at batch 128 is launch-bound: the array version of the update
(``Optimizer.gradient`` and ``SGD.update``) is four element-wise kernels per parameter (v·μ,
η·g, v − η·g, θ + v), six with weight decay (λW, g + λW), more with Nesterov. Here the same
arithmetic, in the same order, runs in one kernel per parameter, compiled with ``--fmad=false``
so that it gives NumPy's bits in float32 and float64 (the tests compile the same source for the
host and check it). Not yet run on a GPU: ``bench/gpu_session.sh`` tests and times it there.
"""

from .. import backend

# Per element: g the loss gradient, w the weight (read before the update), v the velocity.
PREAMBLE = r"""
// g' = g + lambda w  (only for a decayed parameter, as SGD.gradient);  v <- mu v - eta g';
// theta <- theta + v,  or with Nesterov  theta <- theta + (mu v - eta g')
template <typename F>
__device__ void sgd_momentum(F g, bool decayed, F lam, F lr, F mu, bool nesterov, F& v, F& w) {
    const F gd = decayed ? g + lam * w : g;
    v = v * mu;
    v = v - lr * gd;
    w = nesterov ? w + (mu * v - lr * gd) : w + v;
}
"""
IN_PARAMS = "T g, float64 lam, float64 lr, float64 mu, bool nesterov"
OUT_PARAMS = "T v, T w"
OPERATION = "sgd_momentum<T>(g, lam != 0.0, T(lam), T(lr), T(mu), nesterov, v, w);"   # λ ≠ 0 as a double
OPTIONS = ("--fmad=false",)
KERNELS = {"sgd_momentum": (IN_PARAMS, OUT_PARAMS, OPERATION)}      # name: (in, out, operation)

def sgd_momentum_kernel():
    return backend.elementwise_kernel("sgd_momentum", *KERNELS["sgd_momentum"], PREAMBLE, OPTIONS)
