"""Minimal mode (Szegedy et al. 2014): per example, the smallest perturbation that succeeds.

Each example gets its own constant c_n, searched by bisection in log c (all examples
at once, with the batched optimiser): success at c_n → try a larger c_n (smaller r),
failure → a smaller one. Every point the optimiser evaluates, at any c, is a
candidate: the smallest ‖r‖₂ among the successful ones is kept. Success means
hitting the target (targeted) or leaving the true class (untargeted).
"""
import numpy

from .. import backend
from .batched import DEFAULT_ALGORITHM, _minimise
from .lbfgsb import FTOL, MAX_LINESEARCH, PGTOL
from .objective import AttackObjective, network_copy, prepare_inputs
from .result import AttackResult


def minimal_attack(net, x, labels, targets, c_init=1.0, steps=12, factor=10.0, maxiter=200, memory=10,
                   dtype="float64", algorithm=DEFAULT_ALGORITHM):
    """Returns an AttackResult with per-example minimal adversarials (original kept where none found)."""
    module = backend.xp()
    x_host, labels, targets, untargeted = prepare_inputs(net, x, labels, targets, c_init)
    if not factor > 1:
        raise ValueError(f"the c search factor must be > 1, got {factor}")
    work = network_copy(net, dtype, module)
    n = len(x_host)
    x0 = module.asarray(x_host, dtype=dtype)
    x0_flat = x0.reshape(n, -1)
    aim = module.asarray(labels if untargeted else targets)
    best = x0_flat.copy()
    best_l2 = module.full(n, numpy.inf)
    lo = numpy.zeros(n)                 # largest c known to succeed (0: none yet)
    hi = numpy.full(n, numpy.inf)       # smallest c known to fail
    c = numpy.full(n, float(c_init))
    its = numpy.zeros(n, dtype=numpy.int64)

    def keep_best(rows, x_flat, logits):
        pred = logits.argmax(axis=1)
        ok = (pred != aim[rows]) if untargeted else (pred == aim[rows])
        l2 = ((x_flat - x0_flat[rows]) ** 2).sum(axis=1)
        better = ok & (l2 < best_l2[rows])
        if bool(better.any()):
            best[rows[better]] = module.clip(x_flat[better], 0, 1)   # iterates may overshoot the box by rounding
            best_l2[rows[better]] = l2[better]

    for _ in range(steps):
        objective = AttackObjective(work, module.asarray(c, dtype=dtype), x0, aim, untargeted=untargeted)
        adv, it, _ = _minimise(objective, x0, maxiter, memory, PGTOL, FTOL, MAX_LINESEARCH, keep_best,
                               algorithm=algorithm)
        its += it
        pred = backend.to_numpy(work.predict(adv))
        ok = (pred != labels) if untargeted else (pred == targets)
        lo = numpy.where(ok, numpy.maximum(lo, c), lo)
        hi = numpy.where(ok, hi, numpy.minimum(hi, c))
        # next c: bisect in log space inside the bracket, or step out by ``factor``
        c = numpy.where((lo > 0) & numpy.isfinite(hi), numpy.sqrt(numpy.maximum(lo, 1e-300) * hi),
                        numpy.where(lo > 0, c * factor, c / factor))
    adversarial = best.reshape(x0.shape)
    predicted = backend.to_numpy(work.predict(adversarial))
    meta = {"method": "minimal", "algorithm": algorithm, "steps": steps, "c_init": c_init, "c_found": lo.tolist()}
    return AttackResult.from_arrays(x_host, adversarial, targets, labels, predicted, its,
                                    backend.to_numpy(best_l2) < numpy.inf, meta)
