"""Losses: ``forward(output, target)`` returns the batch-mean loss, ``backward()`` ∂loss/∂output.

``reduction="sum"`` gives the sum over the batch instead, so that ∂loss/∂x_n is example
n's own gradient (the attacks use it). Each loss may name the output layer it fuses with
(``fuses_with``): a network ending in that layer hands the loss the layer's *input*
(logits), which is exact and stable where the fused form is (softmax + cross-entropy,
sigmoid + binary cross-entropy).
"""
from . import backend
from .layers.activations import log_softmax, softmax


class Loss:
    fuses_with = None

    def __init__(self, reduction="mean"):
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        self.reduction = reduction

    def _scale(self, n):
        return 1.0 / n if self.reduction == "mean" else 1.0

    def __call__(self, output, target):
        return self.forward(output, target)


def _check_labels(logits, labels):
    if labels.ndim != 1 or labels.shape[0] != logits.shape[0]:
        raise ValueError(f"labels must have shape ({logits.shape[0]},), got {tuple(labels.shape)}")


def softmax_cross_entropy_rows(logits, labels, grad_scale=None):
    """Per row n of z = logits (N, K) with label t_n:  nll_n = −log softmax(z_n)[t_n]  and
    G_n = (softmax(z_n) − onehot(t_n))·grad_scale = ∂(grad_scale·nll_n)/∂z_n (grad_scale None: 1).
    Returns (nll (N,), G (N, K)). On CuPy one CUDA kernel (``loss_kernels.py``), equal to rounding."""
    xp = backend.get_array_module(logits)
    if backend.fused_kernels(xp) and logits.dtype.char in "fd":
        from . import loss_kernels
        return loss_kernels.softmax_cross_entropy(logits, labels, grad_scale)
    logp = log_softmax(logits)
    rows = xp.arange(logits.shape[0])
    nll = -logp[rows, labels]
    grad = xp.exp(logp)                                 # softmax(z), then − onehot(t)
    grad[rows, labels] -= 1
    return nll, (grad if grad_scale is None else grad * grad.dtype.type(grad_scale))


class SoftmaxCrossEntropy(Loss):
    """L = −Σ_n log softmax(z_n)[t_n]  (/N for the mean);  ∂L/∂z = (softmax(z) − onehot(t)) (/N).

    z: (N, K) logits, t: (N,) integer labels in [0, K): outside it NumPy raises (t ≥ K) or wraps
    around (t < 0), CuPy's array code wraps, its kernel gives NaN. Forward computes the gradient
    too (on CuPy both come from one kernel); backward returns that array, the same one each call
    until the next forward.
    """
    fuses_with = "Softmax"

    def forward(self, logits, labels):
        _check_labels(logits, labels)
        self.scale = self._scale(logits.shape[0])
        nll, self.grad = softmax_cross_entropy_rows(logits, labels, self.scale)
        return nll.sum() * self.scale

    def backward(self):
        return self.grad


class BinaryCrossEntropy(Loss):
    """L = Σ_n Σ_i softplus(z) − t·z  = −Σ [t log σ(z) + (1−t) log(1−σ(z))];  ∂L/∂z = σ(z) − t.

    z: logits of the sigmoid units (a network ending in Sigmoid passes them here),
    t: targets in [0, 1] of the same shape (for an autoencoder, the input image).
    softplus(z) = max(z, 0) + log(1 + e^{−|z|}) never overflows.
    """
    fuses_with = "Sigmoid"

    def forward(self, logits, targets):
        if logits.shape != targets.shape:
            raise ValueError(f"BinaryCrossEntropy: outputs {tuple(logits.shape)} and targets "
                             f"{tuple(targets.shape)} differ in shape")
        xp = backend.get_array_module(logits)
        softplus = xp.maximum(logits, 0) + xp.log1p(xp.exp(-abs(logits)))
        self.probs = 0.5 * xp.tanh(0.5 * logits) + 0.5
        self.targets, self.scale = targets, self._scale(logits.shape[0])
        return (softplus - targets * logits).sum() * self.scale

    def backward(self):
        return (self.probs - self.targets) * self.probs.dtype.type(self.scale)


class MeanSquaredError(Loss):
    """L = Σ_n ½‖y_n − t_n‖²  (/N for the mean);  ∂L/∂y = (y − t) (/N)."""

    def forward(self, output, targets):
        if output.shape != targets.shape:
            raise ValueError(f"MeanSquaredError: outputs {tuple(output.shape)} and targets "
                             f"{tuple(targets.shape)} differ in shape")
        self.diff, self.scale = output - targets, self._scale(output.shape[0])
        return 0.5 * (self.diff * self.diff).sum() * self.scale

    def backward(self):
        return self.diff * self.diff.dtype.type(self.scale)


LOSSES = {"cross_entropy": SoftmaxCrossEntropy, "binary_cross_entropy": BinaryCrossEntropy,
          "mse": MeanSquaredError}

__all__ = ["Loss", "SoftmaxCrossEntropy", "BinaryCrossEntropy", "MeanSquaredError", "LOSSES",
           "softmax"]
