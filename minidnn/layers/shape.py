"""Layers that only change the shape of their input."""
import math

from .base import Layer


class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1·d2·...);  backward reshapes gy back."""

    def forward(self, x, train=False):
        self.x_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, gy):
        return gy.reshape(self.x_shape)

    def output_shape(self, input_shape):
        return (math.prod(input_shape),)


class Reshape(Layer):
    """(N, ...) -> (N, *shape), e.g. a flat 784-vector back to (1, 28, 28)."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)

    def forward(self, x, train=False):
        self.x_shape = x.shape
        return x.reshape((x.shape[0],) + self.shape)

    def backward(self, gy):
        return gy.reshape(self.x_shape)

    def config(self):
        return {"shape": list(self.shape)}

    def output_shape(self, input_shape):
        if math.prod(input_shape) != math.prod(self.shape):
            raise ValueError(f"{self!r} cannot reshape {tuple(input_shape)}")
        return self.shape
