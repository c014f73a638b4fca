"""The reference attack: scipy's L-BFGS-B, one example at a time, every option explicit.

For one image x and target l it solves the paper's Eq. 1,

    minimise_r  c·‖r‖² + CE(net(x + r), l)   s.t.  0 ≤ x + r ≤ 1,

by optimising x' = x + r directly under the bounds [0, 1] (the same problem), from
x' = x (r = 0), in float64 so that the line search is not fooled by rounding. The
gradient is exact: the network's own backward pass. scipy's defaults (memory m = 10)
and maxiter 200. This is the version to trust and to read; ``batched.py`` is the
fast one, checked against it.
"""
import time

import numpy

from .. import backend
from .objective import AttackObjective, network_copy, prepare_inputs
from .result import AttackResult


def lbfgsb_attack(net, x, labels, targets, c, maxiter=200, memory=10, progress=False, net64=None, start=None):
    """Attack each example of x: (N, ...) in [0,1], labels/targets: (N,) (targets −1: untargeted).

    ``start``: (N, ...) points in [0,1] to start from instead of x' = x (the objective still
    measures r from x). Returns an AttackResult whose meta keeps scipy's per-example messages.
    """
    from scipy.optimize import minimize   # scipy is an optional extra: imported only here
    x, labels, targets, untargeted = prepare_inputs(net, x, labels, targets, c)
    if start is None:
        start = x
    else:
        start = backend.to_numpy(start).astype(numpy.float64)
        if start.shape != x.shape:
            raise ValueError(f"start must have the images' shape {x.shape}, got {start.shape}")
        if start.min() < 0 or start.max() > 1:
            raise ValueError("start points must lie in the box [0, 1]")
    net64 = net64 or network_copy(net, numpy.float64, numpy)
    adversarial, iterations, converged, messages = numpy.empty_like(x), [], [], []
    t0 = time.perf_counter()
    bar = _bar(len(x), progress)
    for n in range(len(x)):
        aim = labels[n:n + 1] if untargeted else targets[n:n + 1]
        objective = AttackObjective(net64, c, x[n:n + 1], aim, untargeted=untargeted)

        def fun(flat):
            f, g, _ = objective(flat.reshape(x[n:n + 1].shape))
            return float(f[0]), g.reshape(-1)

        res = minimize(fun, start[n].reshape(-1).copy(), jac=True, method="L-BFGS-B",
                       bounds=[(0.0, 1.0)] * x[n].size,
                       options={"maxiter": maxiter, "maxcor": memory})
        adversarial[n] = numpy.clip(res.x, 0.0, 1.0).reshape(x[n].shape)
        iterations.append(res.nit)
        converged.append(bool(res.success))
        messages.append(str(res.message))
        bar.update()
    bar.close()
    predicted = backend.to_numpy(net64.predict(adversarial))
    meta = {"method": "reference", "c": float(c), "maxiter": maxiter, "memory": memory,
            "seconds": time.perf_counter() - t0, "messages": messages}
    return AttackResult.from_arrays(x, adversarial, targets, labels, predicted, numpy.array(iterations),
                                    numpy.array(converged), meta)


def _bar(total, enabled):
    from ..training.progress import progress_bar
    return progress_bar(total, "L-BFGS-B attack", enabled)
