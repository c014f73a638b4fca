"""Training: optimizers, schedules, the trainer loop."""
from .augment import RandomShift
from .optim import SGD, Adam, Optimizer, l2_penalty, make_optimizer
from .schedules import make_schedule
from .trainer import Trainer, classification_error, mean_loss

__all__ = ["RandomShift", "SGD", "Adam", "Optimizer", "l2_penalty", "make_optimizer", "make_schedule", "Trainer",
           "classification_error", "mean_loss"]
