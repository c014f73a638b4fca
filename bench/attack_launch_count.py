"""Kernel launches and device-to-host copies per iteration of the batched attack on CuPy, counted on the CPU.

    python bench/attack_launch_count.py [--checkpoint checkpoints/N200-200-10.npz] [--n 200] [--c 0.5]

The GPU attack runs a few thousand images at once, yet each L-BFGS-B iteration is a fixed
sequence of array operations whatever the number of images: on a GPU its time is launches and
synchronisations as much as arithmetic. This runs ``batched_lbfgs_attack`` (``lbfgsb``, float32
and float64) on the strict CuPy stand-in and counts, per pass of the iteration loop:

* launches, as ``launch_count.py`` counts them (each new array, in-place update or assignment;
  each call of one of minidnn's CUDA kernels is one launch), by the minidnn file that asked;
* copies to the host: each ``bool()``, ``int()``, ``float()``, ``.item()``, ``.get()`` or
  ``asnumpy`` of a device array, where the host waits for the GPU (a synchronisation).

Without --checkpoint the network is an untrained N200-200-10 (fewer iterations; the same
operations per iteration). Counts depend on the images only through which branches run
(rows that finish, line searches that need more rounds): they are means over the passes.
``search_rounds`` is CuPy's default (3) unless --search-rounds says otherwise.
"""
import argparse
import collections
import contextlib

import numpy

import launch_count
from launch_count import counts, state, strict_xp
from minidnn import backend
from minidnn.attacks import batched_lbfgs_attack, choose_targets, lbfgsb, linesearch_kernel
from common import attack_case
from minidnn.networks import build_model

transfers = collections.Counter()
passes = {"n": 0}


def instrument_attack():
    """launch_count's counting, plus copies to the host (each ``bool()``, ``int()``, ``float()``,
    ``.item()``, ``.get()``, ``asnumpy`` of a strict array) and passes of the iteration loop.
    Returns a function that takes it all out again (the tests put the stand-in back with it)."""
    def copying(original):
        def copied(*args):
            if state["counting"]:
                transfers[launch_count._source()] += 1
            return original(*args)
        return copied

    def iterate(*args, original=lbfgsb._iterate, **kwargs):
        passes["n"] += state["counting"]
        return original(*args, **kwargs)
    cls = strict_xp.StrictArray
    patches = [(cls, name, copying(getattr(cls, name))) for name in ("__bool__", "__int__", "__float__", "item", "get")]
    patches += [(strict_xp, "asnumpy", copying(strict_xp.asnumpy)), (lbfgsb, "_iterate", iterate)]
    undo_launches = launch_count.instrument()
    undo_patches = launch_count.patch(patches)

    def undo():
        undo_patches()
        undo_launches()
    return undo


def _search_step(search, f, g, rows):
    with backend.use_fused_kernels(False):
        return search.step(f, g, rows)


def _accumulate(a):
    return lbfgsb._accumulate_states(a, form="cumsum")


@contextlib.contextmanager
def attack_kernels():
    """The network's kernels (launch_count.with_kernels) and the attack's own two."""
    from minidnn.attacks import cauchy_kernels
    patches = [(linesearch_kernel, "fused_step", launch_count._one_launch("Moré-Thuente step", _search_step)),
               (cauchy_kernels, "accumulate", launch_count._one_launch("Cauchy cumulative sums", _accumulate))]
    with launch_count.with_kernels(), launch_count.patched(patches):
        yield


def count_attack(net, x, labels, targets, c, dtype, fused, search_rounds=lbfgsb.GPU_SEARCH_ROUNDS):
    """Mean launches and host copies per iteration pass, by source: (launches, transfers, passes)."""
    counts.clear()
    transfers.clear()
    passes["n"] = 0
    with backend.use_backend("strict"), (attack_kernels() if fused else contextlib.nullcontext()):
        state["counting"] = True
        try:       # host network and arrays in, as for a user: the attack copies them to the device
            batched_lbfgs_attack(net, x, labels, targets, c, dtype=dtype, search_rounds=search_rounds)
        finally:
            state["counting"] = False
    per = max(1, passes["n"])
    return ({k: v / per for k, v in counts.items()}, {k: v / per for k, v in transfers.items()}, passes["n"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="a trained model (default: an untrained N200-200-10)")
    parser.add_argument("--n", type=int, default=200, help="test-like images: the first n of MNIST's test set "
                        "with --checkpoint, else uniform noise")
    parser.add_argument("--c", type=float, default=0.5)
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--search-rounds", type=int, default=lbfgsb.GPU_SEARCH_ROUNDS,
                        help="line-search rounds per iteration (default: CuPy's default)")
    parser.add_argument("--by-function", action="store_true", help="count by file and function, not file")
    args = parser.parse_args()
    state["by_function"] = args.by_function
    if args.checkpoint:
        net, x, labels, targets = attack_case(args.checkpoint, args.n)      # random targets from seed 0
    else:
        net = build_model("N200-200-10", rng=0)
        rng = numpy.random.default_rng(0)
        x, labels = rng.uniform(size=(args.n,) + net.input_shape).astype(numpy.float32), rng.integers(0, 10, args.n)
        targets = choose_targets(net, x, labels, "random", rng=numpy.random.default_rng(0))
    instrument_attack()
    print(f"per pass of the batched attack's iteration loop on CuPy, counted on the strict stand-in "
          f"({args.checkpoint or 'untrained N200-200-10'}, {args.n} images, c = {args.c}, "
          f"search_rounds = {args.search_rounds}):")
    for dtype in args.dtypes.split(","):
        array_code, array_copies, n_array = count_attack(net, x, labels, targets, args.c, dtype, False,
                                                         args.search_rounds)
        fused, fused_copies, n_fused = count_attack(net, x, labels, targets, args.c, dtype, True, args.search_rounds)
        print(f"\n{dtype}: launches {sum(array_code.values()):.1f} with array code ({n_array} passes), "
              f"{sum(fused.values()):.1f} with minidnn's CUDA kernels ({n_fused} passes); copies to the host "
              f"{sum(array_copies.values()):.1f} / {sum(fused_copies.values()):.1f}")
        print(f"  {'launches by source':<44}{'array':>8}{'kernels':>9}")
        for where in sorted(set(array_code) | set(fused), key=lambda k: (-array_code.get(k, 0), -fused.get(k, 0), k)):
            print(f"  {where:<44}{array_code.get(where, 0):>8.1f}{fused.get(where, 0):>9.1f}")
        print(f"  {'copies to the host by source':<44}")
        for where in sorted(set(array_copies) | set(fused_copies), key=lambda k: (-array_copies.get(k, 0), k)):
            print(f"  {where:<44}{array_copies.get(where, 0):>8.1f}{fused_copies.get(where, 0):>9.1f}")


if __name__ == "__main__":
    main()
