"""Dense (affine) layer: y = x W + b."""
import numpy

from .base import Layer, init_rng, new_param


class Dense(Layer):
    """Affine map y = x W + b.

    x: (N, in_features), W: (in_features, out_features), b: (out_features,),
    y: (N, out_features). Weights decay (L2), the bias does not.
    Initialisation: W ~ U(±sqrt(6/(in+out))) (Glorot) for sigmoid/tanh/linear,
    W ~ N(0, 2/in) (He) when ``init='he'`` (ReLU networks).
    """

    def __init__(self, in_features, out_features, init="glorot", rng=None, decay=True):
        super().__init__()
        self.in_features, self.out_features, self.init = int(in_features), int(out_features), init
        self.decay = decay
        rng = init_rng(rng)
        if init == "he":
            W = rng.normal(0.0, numpy.sqrt(2.0 / in_features), (in_features, out_features))
        elif init == "glorot":
            limit = numpy.sqrt(6.0 / (in_features + out_features))
            W = rng.uniform(-limit, limit, (in_features, out_features))
        else:
            raise ValueError(f"Dense init must be 'glorot' or 'he', got {init!r}")
        self.params = {"W": new_param(W, decay=decay), "b": new_param(numpy.zeros(out_features), decay=False)}

    @property
    def W(self):
        return self.params["W"].data

    @property
    def b(self):
        return self.params["b"].data

    def forward(self, x, train=False):
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"{self!r}: expected input (N, {self.in_features}), got {tuple(x.shape)}")
        self.x = x
        return x @ self.W + self.b

    def backward(self, gy):
        if self.compute_param_grads:
            self.params["W"].accumulate(self.x.T @ gy)  # ∂L/∂W = xᵀ gy
            self.params["b"].accumulate(gy.sum(axis=0)) # ∂L/∂b = Σ_n gy
        if not self.compute_input_grad:
            return None
        return gy @ self.W.T                            # ∂L/∂x = gy Wᵀ

    def config(self):
        return {"in_features": self.in_features, "out_features": self.out_features,
                "init": self.init, "decay": self.decay}

    def output_shape(self, input_shape):
        if tuple(input_shape) != (self.in_features,):
            raise ValueError(f"{self!r} expects ({self.in_features},) inputs, got {tuple(input_shape)}")
        return (self.out_features,)
