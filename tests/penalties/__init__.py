"""Tests of the Jacobian penalties (minidnn.penalties) and Gaussian-noise training (minidnn.networks.noise).

Shared helpers live here (this folder has no conftest of its own):

* ``fd_jacobian``: the explicit Jacobian by central differences of a forward function, the
  brute-force reference that the closed forms are compared with (independent of every
  backward pass and of the penalty code);
* ``backward_jacobian``: the same Jacobian by one backward pass per output unit;
* ``randomize``: random weights *and biases* (zero biases would hide bias mistakes, and put
  every all-padding convolution window exactly on ReLU's kink);
* ``relu_margin``: the smallest |pre-activation| feeding a ReLU, to keep finite differences
  away from the kink;
* ``ZeroLoss``: a loss that is identically 0, so that a gradient check sees the penalty alone;
* ``mnist_directory`` and ``strict_module``: MNIST's folder and the strict CuPy stand-in.
"""
import os
import pathlib

import numpy

from minidnn.layers import Dense, ReLU, Sigmoid, Tanh
from minidnn.losses import Loss
from minidnn.networks import Sequential

REPO = pathlib.Path(__file__).resolve().parents[2]
ACTIVATIONS = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh}


# ---- brute-force Jacobians ---------------------------------------------------------------------
def fd_jacobian(f, x, eps=1e-6):
    """J[n, i, j] = ∂f(x)_n,i / ∂x_n,j by central differences, for a batch of independent examples.

    f: (N, *in_shape) -> (N, *out_shape), each example's output depending on its own input only,
    so one perturbed coordinate j of every example at once gives column j of every J_n.
    Returns (N, out_size, in_size) float64 (NumPy).
    """
    x = numpy.array(x, dtype=numpy.float64)
    n = x.shape[0]
    flat = x.reshape(n, -1)
    columns = []
    for j in range(flat.shape[1]):
        plus, minus = flat.copy(), flat.copy()
        plus[:, j] += eps
        minus[:, j] -= eps
        diff = numpy.asarray(f(plus.reshape(x.shape))) - numpy.asarray(f(minus.reshape(x.shape)))
        columns.append(diff.reshape(n, -1) / (2 * eps))
    return numpy.stack(columns, axis=2)


def backward_jacobian(layers, x):
    """The same Jacobian by one backward pass per output unit through ``layers`` (a list)."""
    h = x
    for layer in layers:
        h = layer.forward(h)
    n, rows = h.shape[0], []
    for k in range(h[0].size):
        g = numpy.zeros((n, h[0].size))
        g[:, k] = 1
        g = g.reshape(h.shape)
        for layer in reversed(layers):
            g = layer.backward(g)
        rows.append(g.reshape(n, -1))
    return numpy.stack(rows, axis=1)


def frobenius2(J):
    """Per-example squared Frobenius norms of (N, out, in) Jacobians."""
    return (J * J).sum(axis=(1, 2))


# ---- networks --------------------------------------------------------------------------------
def randomize(net, rng, scale=1.0):
    """Every parameter (biases too) drawn afresh: W ~ N(0, scale²/fan_in), b ~ N(0, 0.5²)."""
    for layer in net.layers:
        for name, p in layer.params.items():
            shape = p.data.shape
            fan_in = shape[0] if isinstance(layer, Dense) else int(numpy.prod(shape[1:]))
            std = scale / numpy.sqrt(fan_in) if name == "W" else 0.5
            p.data = rng.normal(0.0, std, shape).astype(p.data.dtype)
    return net


def small_mlp(widths, activation, rng, final=()):
    """widths[0] → widths[1] → … → widths[-1] logits, ``activation`` (a name or one per hidden
    layer) after every hidden Dense; ``final`` layers appended (e.g. a Softmax layer)."""
    acts = [activation] * (len(widths) - 2) if isinstance(activation, str) else list(activation)
    layers = []
    for i in range(len(widths) - 1):
        layers.append(Dense(widths[i], widths[i + 1], rng=rng))
        if i < len(widths) - 2:
            layers.append(ACTIVATIONS[acts[i]]())
    return randomize(Sequential(layers + list(final), (widths[0],)), rng)


def relu_margin(net, x):
    """min |a| over every pre-activation that feeds a ReLU layer (inf if none), eval mode."""
    margin, h = numpy.inf, x
    for i, layer in enumerate(net.layers):
        if isinstance(layer, ReLU) and h.size:
            margin = min(margin, float(numpy.abs(h).min()))
        h = layer.forward(h)
    return margin


class ZeroLoss(Loss):
    """L = 0 whatever the output: a gradient check of loss + penalty then checks the penalty alone."""

    def forward(self, output, target):
        self.output = output
        return (output * 0).sum()

    def backward(self):
        return self.output * 0


# ---- environment -------------------------------------------------------------------------------
def mnist_directory():
    """$MINIDNN_DATA, else ../shared/data/mnist beside the repository, else /work/shared/data/mnist."""
    names = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
    for directory in (os.environ.get("MINIDNN_DATA"), REPO.parent / "shared" / "data" / "mnist",
                      "/work/shared/data/mnist"):
        if directory and all(os.path.isfile(os.path.join(directory, f)) for f in names):
            return str(directory)
    return None


def strict_module():
    """The strict CuPy stand-in (tests/support/strict_xp.py), registered with the backend as "strict"."""
    from support import strict_xp
    return strict_xp.strict


def freeze_noise(net):
    """Rewind every GaussianNoise layer of ``net`` before each forward, so that finite differences
    see one fixed function (the same noise draw every time). Returns ``net``."""
    from minidnn.layers import GaussianNoise
    for layer in net.layers:
        if isinstance(layer, GaussianNoise):
            start, draw = layer.state(), layer.forward
            layer.forward = lambda h, train=False, start=start, draw=draw, layer=layer: (
                layer.load_state(start), draw(h, train))[1]
    return net
