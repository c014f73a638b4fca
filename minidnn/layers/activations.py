"""Element-wise activations and softmax. Each caches the one array its derivative needs.

On CuPy, ReLU's forward and the sigmoid's forward and backward are one CUDA kernel each
(``activation_kernels.py``): NumPy's operations in the same order.
"""
from .. import backend
from .base import Layer


def _fused(a):
    """Whether ``a`` takes the CUDA kernels (CuPy, float32/float64, kernels on)."""
    return backend.fused_kernels(backend.get_array_module(a)) and a.dtype.char in "fd"


class ReLU(Layer):
    """y = max(x, 0);  gx = gy · [x > 0]."""

    def forward(self, x, train=False):
        if _fused(x):
            from . import activation_kernels
            y, self.mask = activation_kernels.relu(x)
            return y
        self.mask = x > 0
        return x * self.mask

    def backward(self, gy):
        return gy * self.mask


class Sigmoid(Layer):
    """y = 1 / (1 + e^{-x});  gx = gy · y (1 − y)  (keeps its output, as Chainer does)."""

    def forward(self, x, train=False):
        if _fused(x):
            from . import activation_kernels
            self.y = activation_kernels.sigmoid(x)
            return self.y
        xp = backend.get_array_module(x)
        # tanh form: stable for large |x| in both directions, no overflow warnings.
        self.y = 0.5 * xp.tanh(0.5 * x) + 0.5
        return self.y

    def backward(self, gy):
        if _fused(gy) and gy.dtype == self.y.dtype:
            from . import activation_kernels
            return activation_kernels.sigmoid_grad(gy, self.y)
        return gy * self.y * (1 - self.y)


class Tanh(Layer):
    """y = tanh(x);  gx = gy · (1 − y²)."""

    def forward(self, x, train=False):
        xp = backend.get_array_module(x)
        self.y = xp.tanh(x)
        return self.y

    def backward(self, gy):
        return gy * (1 - self.y * self.y)


def softmax(z, axis=-1):
    """softmax(z)_k = e^{z_k − max z} / Σ_j e^{z_j − max z}  (shifted: no overflow)."""
    xp = backend.get_array_module(z)
    e = xp.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(z, axis=-1):
    """log softmax(z) = z − max z − log Σ e^{z − max z}."""
    xp = backend.get_array_module(z)
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


class Softmax(Layer):
    """y = softmax(x) over the last axis;  gx = y ⊙ (gy − ⟨gy, y⟩)  (= (diag y − y yᵀ) gy).

    Classifiers end in logits and use the fused SoftmaxCrossEntropy loss; this layer is
    for when the probabilities themselves are the output (e.g. Jacobian penalties on y).
    """

    def forward(self, x, train=False):
        self.y = softmax(x)
        return self.y

    def backward(self, gy):
        return self.y * (gy - (gy * self.y).sum(axis=-1, keepdims=True))
