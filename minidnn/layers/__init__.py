"""Layers: each a forward that caches what its backward needs, and a backward."""
from .activations import ReLU, Sigmoid, Softmax, Tanh, log_softmax, softmax
from .base import Layer, Parameter
from .blur import GaussianBlur
from .conv import Conv2D
from .dense import Dense
from .noise import GaussianNoise
from .pooling import MaxPool2D
from .shape import Flatten, Reshape

LAYER_TYPES = {cls.__name__: cls for cls in (
    Dense, Conv2D, MaxPool2D, Flatten, Reshape, ReLU, Sigmoid, Tanh, Softmax, GaussianNoise, GaussianBlur)}


def register_layer(cls):
    """Make a Layer subclass rebuildable from a spec (checkpoints). Usable as a decorator."""
    LAYER_TYPES[cls.__name__] = cls
    return cls


def layer_from_spec(spec):
    """Rebuild a layer from ``{"type": name, **config}`` (parameters freshly initialised)."""
    spec = dict(spec)
    name = spec.pop("type", None)
    if name not in LAYER_TYPES:
        raise ValueError(f"unknown layer type {name!r} in spec; known: {sorted(LAYER_TYPES)}")
    return LAYER_TYPES[name](**spec)


__all__ = ["Layer", "Parameter", "Dense", "Conv2D", "MaxPool2D", "Flatten", "Reshape", "ReLU",
           "Sigmoid", "Tanh", "Softmax", "GaussianNoise", "GaussianBlur", "softmax", "log_softmax",
           "LAYER_TYPES", "register_layer", "layer_from_spec"]
