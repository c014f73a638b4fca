"""Where the batched L-BFGS-B attack's time goes, phase by phase, on any backend.

    python bench/attack_phases.py --checkpoint checkpoints/N200-200-10.npz --c 0.5 --n 10000 --backend cupy

cProfile charges a GPU's time to whichever Python line happens to wait for it. Here the device
is synchronised at both ends of every phase (the minimiser's functions are wrapped), so each
phase gets the time of the work it queued. Times are inclusive: the Cauchy chunks are part of
the Cauchy point, the objective and the line-search step part of the search. The
synchronisations cost a little; the unwrapped run's time is printed beside them.

``--primitives`` also times the array operations the minimiser is made of, at its shapes
(median of 5 after a warm-up), to compare with the phases.
"""
import argparse
import collections
import statistics

import numpy

from minidnn import backend
from minidnn.attacks import batched_lbfgs_attack, lbfgsb
from minidnn.attacks.linesearch import MoreThuente

from common import attack_arguments, attack_case, synchronize, timed, timer

# (name, owner, attribute): top-level phases first, then phases inside them
PHASES = [("middle matrix M", lbfgsb, "middle_matrix"), ("Cauchy point", lbfgsb, "cauchy_point"),
          ("subspace minimisation", lbfgsb, "subspace_minimum"), ("line search", lbfgsb, "_search"),
          ("memory update", lbfgsb, "update_memory"), ("memory drop", lbfgsb, "_drop_memory"),
          ("  Cholesky test (in M)", lbfgsb, "cholesky_succeeds"), ("  Cauchy chunks", lbfgsb, "_cauchy_chunk"),
          ("  free-set tracking (in subspace)", lbfgsb, "_track_free_set"),
          ("  K solve (in subspace)", lbfgsb, "solve_rows"), ("  Moré-Thuente step (in search)", MoreThuente, "step")]


def phases(attack):
    """Run attack() with every phase wrapped; returns (total seconds, {phase: seconds}, {phase: calls})."""
    totals, calls = collections.Counter(), collections.Counter()
    saved = [(owner, attr, getattr(owner, attr)) for _, owner, attr in PHASES]
    for name, owner, attr in PHASES:
        setattr(owner, attr, timed(totals, name, getattr(owner, attr), sync=True, calls=calls))
    saved_min = lbfgsb.minimize_box

    def minimize_box(fun, *args, **kwargs):                     # the objective's time, per call of fun
        return saved_min(timed(totals, "  objective f, ∇f (in search)", fun, sync=True, calls=calls), *args, **kwargs)
    lbfgsb.minimize_box = minimize_box
    from minidnn.attacks import batched
    batched.ALGORITHMS["lbfgsb"] = (minimize_box, lbfgsb.CONVERGED)
    try:
        synchronize()
        t0 = timer()
        attack()
        synchronize()
        return timer() - t0, totals, calls
    finally:
        for owner, attr, function in saved:
            setattr(owner, attr, function)
        lbfgsb.minimize_box = saved_min
        batched.ALGORITHMS["lbfgsb"] = (saved_min, lbfgsb.CONVERGED)


def primitives(n, dim, m2, dtype, reps=5):
    """Seconds (median) of the minimiser's building blocks at its shapes."""
    xp = backend.xp()
    rng = numpy.random.default_rng(0)
    a = xp.asarray(rng.random((n, dim)), dtype=dtype)
    b = xp.asarray(rng.random((n, dim)), dtype=dtype)
    W = xp.asarray(rng.random((n, dim, m2)), dtype=dtype)
    u = xp.asarray(rng.random((n, m2)), dtype=dtype)
    K = xp.asarray(rng.random((n, m2, m2)) + 4 * numpy.eye(m2), dtype=dtype)
    order = xp.asarray(rng.integers(0, dim, (n, 32)))
    states = xp.asarray(rng.random((n, 33, m2)), dtype=dtype)
    r = xp.arange(n)[:, None]
    lower = xp.tril(xp.ones((33, 33), dtype=dtype))                    # cumulative sums as a product
    ops = {"add (n, D)": lambda: a + b,
           "where (n, D)": lambda: xp.where(a > 0.5, a, b),
           "row dot (n, D)": lambda: lbfgsb.rowdot(a, b),
           "row max (n, D)": lambda: a.max(axis=1),
           "argpartition 32 of (n, D)": lambda: xp.argpartition(a, 31, axis=1),
           "argsort (n, D)": lambda: xp.argsort(a, axis=1),
           "W^T v (n, D, 2m)": lambda: lbfgsb._wt(W, a),
           "W u (n, D, 2m)": lambda: lbfgsb._w(W, u),
           "gather W[r, order] (n, 32, 2m)": lambda: W[r, order],
           "cumsum (n, 33, 2m) axis 1": lambda: xp.cumsum(states, axis=1),
           "  the same as 32 slice additions": lambda: lbfgsb._accumulate_states(states.copy(), form="loop"),
           "  the same as a triangular matmul": lambda: xp.matmul(lower, states),
           "  the same as one CUDA kernel (default)":
               lambda: lbfgsb._accumulate_states(states.copy(), form="kernel"),
           "  copy of the states (in loop, kernel)": lambda: states.copy(),
           "solve (n, 2m, 2m)": lambda: xp.linalg.solve(K, u[..., None]),
           "inv (n, m, m)": lambda: xp.linalg.inv(K[:, :m2 // 2, :m2 // 2]),
           "copy W (n, D, 2m)": lambda: W.copy()}
    if xp is numpy:
        del ops["  the same as one CUDA kernel (default)"]
    out = {}
    for name, op in ops.items():
        op()
        seconds = []
        for _ in range(reps):
            synchronize()
            t0 = timer()
            op()
            synchronize()
            seconds.append(timer() - t0)
        out[name] = statistics.median(seconds)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    attack_arguments(parser)
    parser.add_argument("--primitives", action="store_true")
    args = parser.parse_args()
    backend.set_backend(args.backend)
    net, x, y, targets = attack_case(args.checkpoint, args.n)
    options = {"batch_size": args.n, "dtype": args.dtype}
    if args.search_rounds is not None:
        options["search_rounds"] = args.search_rounds
    attack = lambda: batched_lbfgs_attack(net, x, y, targets, args.c, **options)
    batched_lbfgs_attack(net, x[:50], y[:50], targets[:50], args.c, **options)          # warm-up (compiles kernels)
    t0 = timer()
    attack()
    plain = timer() - t0
    total, seconds, calls = phases(attack)
    rounds = lbfgsb.default_search_rounds(backend.xp()) if args.search_rounds is None else args.search_rounds
    print(f"{args.n} images, {args.backend} {args.dtype}, search_rounds {rounds}: {plain:.2f} s "
          f"unwrapped, {total:.2f} s with a synchronisation at every phase's ends")
    top = sum(seconds[name] for name, _, _ in PHASES if not name.startswith(" "))
    for name, _, _ in PHASES[:6] + [("  rest (compaction, tests, bookkeeping)", None, None)] + PHASES[6:] + \
            [("  objective f, ∇f (in search)", None, None)]:
        s = total - top if name.startswith("  rest") else seconds[name]
        print(f"  {name:40s} {s:8.3f} s  {100 * s / total:5.1f}%  {calls.get(name, '')}")
    if args.primitives:
        print(f"primitives at n = {args.n}, D = {x[0].size}, 2m = 20, {args.dtype} (median of 5):")
        for name, s in primitives(args.n, x[0].size, 20, numpy.dtype(args.dtype)).items():
            print(f"  {name:40s} {1e3 * s:9.3f} ms")


if __name__ == "__main__":
    main()
