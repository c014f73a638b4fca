"""The attack objective of Szegedy et al. (2014), the paper's Eq. 1, for a batch.

    minimise_r   c·‖r‖² + L(x + r, l)     subject to  x + r ∈ [0, 1]^m

with L the cross-entropy of the network's logits (log-softmax, never clipped
probabilities) for the target label l. Untargeted: −L(x + r, y) pushes the true
class's loss up instead. Everything is per example: the value and gradient of row n
depend on row n only, so one batched call serves one example or ten thousand.
"""
import numpy

from .. import backend
from ..losses import SoftmaxCrossEntropy, softmax_cross_entropy_rows
from ..networks import Sequential
from .targets import UNTARGETED


def validate_inputs(x, labels, c=None, targets=None, untargeted=False, num_classes=None):
    """Clear errors for the inputs every attack takes."""
    xp = backend.get_array_module(x)
    if c is not None and not c > 0:
        raise ValueError(f"the attack constant c must be > 0, got {c}")
    if labels.ndim != 1 or labels.shape[0] != x.shape[0]:
        raise ValueError(f"labels must have shape ({x.shape[0]},) to match the images, got {tuple(labels.shape)}")
    if targets is not None and targets.shape != labels.shape:
        raise ValueError(f"targets must have shape {tuple(labels.shape)} like the labels, got {tuple(targets.shape)}")
    if not xp.isfinite(x).all():
        raise ValueError(f"images must be finite: {int((~xp.isfinite(x)).sum())} pixels are NaN or infinite")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 1:
        raise ValueError(f"images must lie in the box [0, 1] (got values in [{lo}, {hi}]); "
                         "the attack keeps x + r in [0, 1]")
    if num_classes is not None and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"labels must be in 0..{num_classes - 1}")
    if targets is not None and not untargeted:
        same = int((targets == labels).sum())
        if same:
            raise ValueError(f"{same} target labels equal the true label: a targeted attack needs a wrong label "
                             "(use untargeted=True to push the true class away instead)")
        if num_classes is not None and (int(targets.min()) < 0 or int(targets.max()) >= num_classes):
            raise ValueError(f"target labels must be in 0..{num_classes - 1}")


def prepare_inputs(net, x, labels, targets, c):
    """Host copies every attack starts from, checked: (x float64, labels int64, targets int64, untargeted).

    Targets of −1 everywhere (``UNTARGETED``) mean an untargeted attack.
    """
    x = backend.to_numpy(x).astype(numpy.float64)
    labels = backend.to_numpy(labels).astype(numpy.int64)
    targets = numpy.asarray(targets, dtype=numpy.int64)
    untargeted = bool((targets == UNTARGETED).all())
    validate_inputs(x, labels, c, targets, untargeted, num_classes=int(net.output_shape_[0]))
    return x, labels, targets, untargeted


def network_copy(net, dtype=None, module=None):
    """An independent copy of ``net`` (same spec and weights), optionally in another dtype/array module."""
    copy = Sequential.from_spec(net.spec())
    for (_, src), (_, dst) in zip(net.named_params().items(), copy.named_params().items()):
        target = module or backend.get_array_module(src.data)
        dst.data = target.asarray(backend.to_numpy(src.data)).astype(dtype or src.data.dtype)
    copy.load_layer_states(net.layer_states())
    return copy


class AttackObjective:
    """f_n(r_n) = c·‖r_n‖² ± CE(net(x_n + r_n), l_n) and its gradient, for a batch.

    x0: (N, ...) originals; labels: (N,) the label whose cross-entropy is minimised
    (targets), or the true labels whose cross-entropy is maximised (``untargeted``).
    The network runs in evaluation mode (noise layers off unless ``at_test``).
    """

    def __init__(self, net, c, x0, labels, untargeted=False):
        """c: a float, or an (N,) array of per-example constants (minimal mode)."""
        self.net, self.c, self.x0, self.labels = net, c, x0, labels
        self.sign = -1.0 if untargeted else 1.0
        self.end = net.fused_end(SoftmaxCrossEntropy())   # stop before a trailing Softmax layer

    def __call__(self, x_adv, rows=None):
        """Objective at x_adv = x0 + r for the examples ``rows`` (all if None).

        Returns (f: (n,), ∇_r f: like x_adv, logits: (n, K)):
            ∇_r f = 2c·r ± J_net(x_adv)ᵀ (softmax(z) − onehot(l)).
        """
        x0 = self.x0 if rows is None else self.x0[rows]
        labels = self.labels if rows is None else self.labels[rows]
        per_example = getattr(self.c, "ndim", 0) > 0        # an (N,) array of constants (minimal mode)
        c = self.c[rows] if per_example and rows is not None else self.c
        r = x_adv - x0
        layers = self.net.layers[:self.end]
        with self.net.input_gradient_only():
            z = self.net.forward(x_adv, end=self.end)
            # CE = −log softmax(z)[l] from the logits, and ±∂CE/∂z = ±(softmax(z) − onehot(l))
            ce, g = softmax_cross_entropy_rows(z, labels, self.sign)
            for layer in reversed(layers):
                g = layer.backward(g)
        axes = tuple(range(1, r.ndim))
        if per_example:
            c = c.reshape((-1,) + (1,) * (r.ndim - 1))     # one constant per example
        return (c * r * r).sum(axis=axes) + self.sign * ce, 2 * c * r + g, z
