"""Networks: a sequential container, stacking, and the paper's models by name."""
from .models import MODELS, autoencoder, build_model, convnet, input_layout, mlp, recovery_autoencoder
from .noise import noisy_predict_proba, with_noise, without_noise
from .preprocess import blurred
from .sequential import Sequential, stack

__all__ = ["Sequential", "stack", "MODELS", "build_model", "mlp", "autoencoder", "recovery_autoencoder", "convnet", "input_layout",
           "with_noise", "without_noise", "noisy_predict_proba", "blurred"]
