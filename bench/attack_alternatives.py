"""Ways to run the batched attack faster on a CPU that were measured and not adopted.

    OPENBLAS_NUM_THREADS=1 python bench/attack_alternatives.py --checkpoint checkpoints/N200-200-10.npz --c 0.5

1. Two worker processes (fork, each attacking half of the images) against ``workers=2`` (two threads
   in one process, which contend for the GIL between NumPy calls), timed in turns.
2. Smaller batches per call (the arrays fit the caches better, but each iteration's fixed cost
   is paid more often).
3. scipy's own L-BFGS-B driven for many images at once: each image's ``setulb`` (the
   reverse-communication routine behind ``scipy.optimize.minimize``, a private API:
   ``scipy.optimize._lbfgsb``) is called until it asks for f and ∇f, and the network is then
   evaluated for all waiting images in one batch. It takes exactly scipy's steps; its cost per
   iteration bounds what any use of scipy's compiled L-BFGS-B could gain.
"""
import argparse
import multiprocessing
import statistics

import numpy

from common import attack_case, timer
from minidnn import backend
from minidnn.attacks import lbfgsb
from minidnn.attacks.batched import batched_lbfgs_attack


_JOB = {}          # what the forked processes attack (inherited, not pickled)


def _attack_rows(rows):
    return batched_lbfgs_attack(_JOB["net"], _JOB["x"][rows], _JOB["y"][rows], _JOB["t"][rows], _JOB["c"],
                                dtype=_JOB["dtype"]).adversarial


def halves_in_processes(net, x, y, t, c, dtype):
    """The attack of x split between two forked processes; returns the adversarials."""
    _JOB.update(net=net, x=x, y=y, t=t, c=c, dtype=dtype)
    half = len(x) // 2
    with multiprocessing.get_context("fork").Pool(2) as pool:
        parts = pool.map(_attack_rows, [slice(0, half), slice(half, len(x))])
    return numpy.concatenate(parts)


def scipy_lockstep(net, x, targets, c, m=10, maxiter=200):
    """scipy's L-BFGS-B (setulb) for every image, the network evaluated in batches; returns
    (seconds, seconds in setulb, setulb calls, mean iterations)."""
    from scipy.optimize import _lbfgsb
    from minidnn.attacks.objective import AttackObjective, network_copy
    net64 = network_copy(net, numpy.float64, numpy)
    flat = x.reshape(len(x), -1).astype(numpy.float64)
    objective = AttackObjective(net64, c, flat.reshape(x.shape), numpy.asarray(targets))
    n, dim = flat.shape
    lower, upper, kinds = numpy.zeros(dim), numpy.ones(dim), numpy.full(dim, 2, numpy.int32)
    states = [{"x": flat[k].copy(), "f": numpy.array(0.0), "g": numpy.zeros(dim),
               "wa": numpy.zeros(2 * m * dim + 5 * dim + 11 * m * m + 8 * m), "iwa": numpy.zeros(3 * dim, numpy.int32),
               "task": numpy.zeros(2, numpy.int32), "ln_task": numpy.zeros(2, numpy.int32),
               "lsave": numpy.zeros(4, numpy.int32), "isave": numpy.zeros(44, numpy.int32),
               "dsave": numpy.zeros(29), "its": 0} for k in range(n)]
    t0, in_setulb, calls, waiting = timer(), 0.0, 0, list(range(n))
    while waiting:
        asking, t1 = [], timer()
        for k in waiting:
            s = states[k]
            while True:
                _lbfgsb.setulb(m, s["x"], lower, upper, kinds, s["f"], s["g"], lbfgsb.FTOL / lbfgsb.EPS,
                               lbfgsb.PGTOL, s["wa"], s["iwa"], s["task"], s["lsave"], s["isave"], s["dsave"],
                               lbfgsb.MAX_LINESEARCH, s["ln_task"])
                calls += 1
                if s["task"][0] == 3:                  # wants f and g at x
                    asking.append(k)
                    break
                if s["task"][0] == 1:                  # a new iteration
                    s["its"] += 1
                    if s["its"] >= maxiter:
                        s["task"][:] = (5, 504)
                    continue
                break                                  # converged or stopped
        in_setulb += timer() - t1
        if asking:
            rows = numpy.array(asking)
            f, g, _ = objective(numpy.stack([states[k]["x"] for k in asking]).reshape((len(asking),) + x.shape[1:]),
                                rows)
            g = g.reshape(len(asking), dim)
            for j, k in enumerate(asking):
                states[k]["f"][...] = f[j]
                states[k]["g"][:] = g[j]
        waiting = asking
    return timer() - t0, in_setulb, calls, float(numpy.mean([s["its"] for s in states]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--c", type=float, required=True)
    parser.add_argument("--n", type=int, default=2000, help="images for 1 and 2")
    parser.add_argument("--n-scipy", type=int, default=500, help="images for 3")
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    backend.set_backend("numpy")
    net, x, y, t = attack_case(args.checkpoint, args.n)
    print(f"{args.n} images, c = {args.c}")
    for dtype in ("float32", "float64"):
        threads, processes = [], []
        for _ in range(args.reps):
            t0 = timer()
            by_threads = batched_lbfgs_attack(net, x, y, t, args.c, dtype=dtype, workers=2).adversarial
            threads.append(timer() - t0)
            t0 = timer()
            by_processes = halves_in_processes(net, x, y, t, args.c, dtype)
            processes.append(timer() - t0)
        same = numpy.array_equal(by_threads, by_processes)
        print(f"1. {dtype}: two threads {args.n / statistics.median(threads):.1f} images/s, two processes "
              f"{args.n / statistics.median(processes):.1f} images/s "
              f"({statistics.median(threads) / statistics.median(processes):.2f}x; same adversarials: {same})")
    for batch in (1000, 250, 100):
        t0 = timer()
        batched_lbfgs_attack(net, x, y, t, args.c, dtype="float32", batch_size=batch)
        print(f"2. float32, one worker, batch {batch}: {args.n / (timer() - t0):.1f} images/s", flush=True)
    try:
        seconds, in_setulb, calls, its = scipy_lockstep(net, x[:args.n_scipy], t[:args.n_scipy], args.c)
    except (ImportError, TypeError) as exc:                       # the private API moved or changed
        print(f"3. scipy's setulb could not be driven here: {exc}")
        return
    print(f"3. scipy's L-BFGS-B in lockstep, float64, one process: {args.n_scipy / seconds:.1f} images/s; "
          f"setulb {1e6 * in_setulb / calls:.1f} µs a call ({calls} calls, {in_setulb:.2f} s of {seconds:.2f} s), "
          f"{its:.1f} iterations an image")
    t0 = timer()
    batched_lbfgs_attack(net, x[:args.n_scipy], y[:args.n_scipy], t[:args.n_scipy], args.c, dtype="float64")
    print(f"3. the same images with lbfgsb, float64, one worker: {args.n_scipy / (timer() - t0):.1f} images/s")


if __name__ == "__main__":
    main()
