"""Learning-rate schedules: epoch (0-based) -> multiplier of the base learning rate."""
import math


def _check_factor(gamma, kind):
    if not 0 < gamma < float("inf"):
        raise ValueError(f"a {kind} schedule's factor GAMMA must be > 0, got {gamma}")


def constant():
    return lambda epoch: 1.0


def step(every, gamma=0.1):
    """η_e = η₀ · γ^⌊e / every⌋."""
    if every < 1:
        raise ValueError(f"a step schedule needs EVERY ≥ 1 epoch, got {every}")
    _check_factor(gamma, "step")
    return lambda epoch: gamma ** (epoch // every)


def exponential(gamma):
    """η_e = η₀ · γ^e."""
    _check_factor(gamma, "exp")
    return lambda epoch: gamma ** epoch


def cosine(total_epochs, floor=0.0):
    """η_e = η₀ · (floor + (1 − floor) · ½(1 + cos(π e / total)))."""
    if total_epochs < 1:
        raise ValueError(f"a cosine schedule needs at least 1 epoch, got {total_epochs}")
    if not 0 <= floor <= 1:
        raise ValueError(f"a cosine schedule's floor is a share of the base rate in [0, 1], got {floor}")
    return lambda epoch: floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(epoch, total_epochs) / total_epochs))


def make_schedule(spec, epochs):
    """From a CLI string: 'constant', 'cosine', 'step:EVERY:GAMMA', 'exp:GAMMA'."""
    kind, *args = spec.split(":")
    try:
        if kind == "constant" and not args:
            return constant()
        if kind == "cosine" and len(args) <= 1:
            return cosine(epochs, *map(float, args))
        if kind == "step" and len(args) in (1, 2):
            return step(int(args[0]), float(args[1]) if len(args) > 1 else 0.1)
        if kind == "exp" and len(args) == 1:
            return exponential(float(args[0]))
    except ValueError as exc:
        raise ValueError(f"schedule {spec!r}: {exc}") from None
    raise ValueError(f"unknown schedule {spec!r}; use constant, cosine, step:EVERY:GAMMA or exp:GAMMA")
