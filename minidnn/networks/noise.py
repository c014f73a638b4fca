"""Gaussian-noise variants of a network (the paper's "L1" and "L*" noise, Sections 3.1 and 4.3)."""
import numpy

from ..layers import Conv2D, Dense, GaussianNoise, MaxPool2D, ReLU, Sigmoid, Tanh
from ..layers.base import init_rng
from .sequential import Sequential

WHERE = ("input", "all")


def with_noise(net, sigma, where="input", at_test=False, rng=None):
    """A network sharing ``net``'s layers with GaussianNoise(σ) inserted.

    where='input' (L1): before the first layer only; 'all' (L*): before the first layer
    and after every hidden activation (for a ConvNet, on every feature map, i.e. after
    each activation or pooling stage that feeds another weight layer). The logits get
    no noise. at_test=False: noise during training only; True: at test time too
    (noise injection). Each noise layer draws from its own Generator seeded from ``rng``
    (a seed or a Generator; None means seed 0, reproducible like every other default).
    """
    if where not in WHERE:
        raise ValueError(f"noise position must be one of {WHERE}, got {where!r}")
    seeds = init_rng(rng)

    def noise():
        return GaussianNoise(sigma, at_test=at_test, rng=numpy.random.default_rng(seeds.integers(2**63)))

    layers = [noise()]
    for i, layer in enumerate(net.layers):
        layers.append(layer)
        nxt = net.layers[i + 1] if i + 1 < len(net.layers) else None
        hidden_output = isinstance(layer, (ReLU, Sigmoid, Tanh, MaxPool2D)) and nxt is not None
        if where == "all" and hidden_output and not isinstance(nxt, MaxPool2D) and _feeds_weights(net.layers[i + 1:]):
            layers.append(noise())
    name = f"{net.describe()}+GN({where},σ={sigma:g})"
    return Sequential(layers, net.input_shape, name)


def _feeds_weights(rest):
    return any(isinstance(layer, (Dense, Conv2D)) for layer in rest)


def without_noise(net):
    """The network with every GaussianNoise layer removed (layers shared)."""
    return Sequential([l for l in net.layers if not isinstance(l, GaussianNoise)], net.input_shape, net.name)


def noisy_predict_proba(net, x, sigma, where="input", passes=20, rng=None, batch_size=1000):
    """Test-time noise injection (Section 3.1): p(x) = (1/P) Σ_{k=1..P} softmax(f(x; ε_k)),
    the softmax probabilities of ``passes`` noisy forward passes averaged, ε_k ~ N(0, σ²) at the
    input ('input', L1) or at the input and every hidden layer ('all', L*), drawn from ``rng``
    (a seed or a Generator). σ = 0 is the noiseless prediction. Returns (N, classes)."""
    if passes < 1:
        raise ValueError(f"passes must be ≥ 1, got {passes}")
    net = without_noise(net)
    if sigma == 0:
        return net.predict_proba(x, batch_size)
    noisy = with_noise(net, sigma, where, at_test=True, rng=rng)
    total = noisy.predict_proba(x, batch_size)
    for _ in range(passes - 1):
        total += noisy.predict_proba(x, batch_size)
    return total / passes
