"""ReLU's forward and the sigmoid's forward and backward as one CUDA kernel each, for CuPy.

At a training batch of 128 every element-wise operation is a kernel launch that takes longer
to issue than to run. The array versions (``activations.py``) are two launches for ReLU's
forward (the mask, the product), four for the sigmoid's forward (two products, tanh, a sum) and
three for its backward; here each is one, with the same operations in the same order, compiled
without contraction of a*b + c: NumPy's bits, except the sigmoid's tanh, which is CUDA's (the
tests compile this source for the host and compare). ReLU's backward is one product already.
"""

from .. import backend

PREAMBLE = r"""
// y = x * [x > 0] (x times 1 or 0, as NumPy multiplies by a boolean mask)
template <typename F> __device__ void relu_entry(F x, F& y, bool& mask) {
    mask = x > F(0);
    y = x * F(mask);
}
// y = 0.5 tanh(0.5 x) + 0.5  (the logistic function, stable in both directions)
template <typename F> __device__ F sigmoid_entry(F x) { return F(0.5) * tanh(F(0.5) * x) + F(0.5); }
// gx = (gy * y) * (1 - y)
template <typename F> __device__ F sigmoid_grad_entry(F gy, F y) { return gy * y * (F(1) - y); }
"""
RELU = ("T x", "T y, bool mask", "relu_entry<T>(x, y, mask);")
SIGMOID = ("T x", "T y", "y = sigmoid_entry<T>(x);")
SIGMOID_GRAD = ("T gy, T y", "T gx", "gx = sigmoid_grad_entry<T>(gy, y);")
OPTIONS = ("--fmad=false",)
KERNELS = {"relu_forward": RELU, "sigmoid_forward": SIGMOID, "sigmoid_backward": SIGMOID_GRAD}


def _kernel(name):
    return backend.elementwise_kernel(name, *KERNELS[name], PREAMBLE, OPTIONS)


def relu(x):
    """(x · [x > 0], [x > 0]) for a CuPy array, as ``ReLU.forward``."""
    import cupy
    y, mask = cupy.empty_like(x), cupy.empty(x.shape, dtype=bool)
    _kernel("relu_forward")(x, y, mask)
    return y, mask


def sigmoid(x):
    """0.5 tanh(0.5 x) + 0.5 for a CuPy array, as ``Sigmoid.forward``."""
    import cupy
    y = cupy.empty_like(x)
    _kernel("sigmoid_forward")(x, y)
    return y


def sigmoid_grad(gy, y):
    """gy · y (1 − y) for CuPy arrays of one dtype, as ``Sigmoid.backward``."""
    import cupy
    gx = cupy.empty_like(gy)
    _kernel("sigmoid_backward")(gy, y, gx)
    return gx
