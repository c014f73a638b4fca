"""Additive Gaussian noise: a training-time corruption, and the paper's test-time noise injection."""
from .. import backend
from .base import Layer, init_rng


class GaussianNoise(Layer):
    """y = x + ε,  ε ~ N(0, σ²) i.i.d.;  gx = gy (the noise does not depend on x).

    On in training; at test time only when ``at_test`` is True (Section 3.1's
    noise injection). Noise is drawn on the host from a seeded NumPy Generator and
    copied to the backend, so a seed gives the same noise on NumPy and CuPy; the
    generator's state travels with checkpoints (``state``/``load_state``).
    """

    def __init__(self, sigma, at_test=False, rng=None):
        super().__init__()
        if sigma < 0:
            raise ValueError(f"GaussianNoise: sigma must be ≥ 0, got {sigma}")
        self.sigma, self.at_test = float(sigma), bool(at_test)
        self.rng = init_rng(rng)

    def active(self, train):
        return self.sigma > 0 and (train or self.at_test)

    def forward(self, x, train=False):
        if not self.active(train):
            return x
        eps = self.rng.standard_normal(x.shape, dtype=x.dtype) * x.dtype.type(self.sigma)
        return x + backend.get_array_module(x).asarray(eps)

    def backward(self, gy):
        return gy

    def config(self):
        return {"sigma": self.sigma, "at_test": self.at_test}

    def state(self):
        return {"rng": self.rng.bit_generator.state}

    def load_state(self, state):
        self.rng.bit_generator.state = state["rng"]
