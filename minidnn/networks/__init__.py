"""Networks: a sequential container, stacking, and the paper's models by name."""
from .models import MODELS, autoencoder, build_model, convnet, input_layout, mlp
from .noise import with_noise, without_noise
from .sequential import Sequential, stack

__all__ = ["Sequential", "stack", "MODELS", "build_model", "mlp", "autoencoder", "convnet", "input_layout",
           "with_noise", "without_noise"]
