"""Learning-rate schedules: epoch (0-based) -> multiplier of the base learning rate."""
import math


def constant():
    return lambda epoch: 1.0


def step(every, gamma=0.1):
    """η_e = η₀ · γ^⌊e / every⌋."""
    return lambda epoch: gamma ** (epoch // every)


def exponential(gamma):
    """η_e = η₀ · γ^e."""
    return lambda epoch: gamma ** epoch


def cosine(total_epochs, floor=0.0):
    """η_e = η₀ · (floor + (1 − floor) · ½(1 + cos(π e / total)))."""
    return lambda epoch: floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(epoch, total_epochs) / total_epochs))


def make_schedule(spec, epochs):
    """From a CLI string: 'constant', 'cosine', 'step:EVERY:GAMMA', 'exp:GAMMA'."""
    kind, *args = spec.split(":")
    if kind == "constant":
        return constant()
    if kind == "cosine":
        return cosine(epochs, *map(float, args))
    if kind == "step":
        return step(int(args[0]), float(args[1]) if len(args) > 1 else 0.1)
    if kind == "exp":
        return exponential(float(args[0]))
    raise ValueError(f"unknown schedule {spec!r}; use constant, cosine, step:EVERY:GAMMA or exp:GAMMA")
