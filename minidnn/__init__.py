"""minidnn: a small deep-learning engine with hand-written backprop, on NumPy or CuPy.

Built to reproduce Gu & Rigazio (2014), "Towards Deep Neural Network Architectures
Robust to Adversarial Examples". ``import minidnn`` needs NumPy only.
"""
from .backend import (BackendError, backend_name, get_array_module, set_backend, set_dtype, to_numpy,
                      use_backend, use_dtype, xp)
from .checkpoint import CheckpointError, load_model, save_model
from .layers import (Conv2D, Dense, Flatten, GaussianNoise, Layer, MaxPool2D, Parameter, ReLU, Reshape,
                     Sigmoid, Softmax, Tanh)
from .losses import BinaryCrossEntropy, MeanSquaredError, SoftmaxCrossEntropy
from .networks import MODELS, Sequential, build_model, stack
from .training import SGD, Adam, Trainer

__version__ = "0.1.0"

__all__ = [
    "BackendError", "backend_name", "get_array_module", "set_backend", "set_dtype", "to_numpy",
    "use_backend", "use_dtype", "xp", "CheckpointError", "load_model", "save_model", "Conv2D", "Dense",
    "Flatten", "GaussianNoise", "Layer", "MaxPool2D", "Parameter", "ReLU", "Reshape", "Sigmoid",
    "Softmax", "Tanh", "BinaryCrossEntropy", "MeanSquaredError", "SoftmaxCrossEntropy", "MODELS",
    "Sequential", "build_model", "stack", "SGD", "Adam", "Trainer", "__version__",
]
