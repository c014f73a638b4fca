"""The batched attack's speed at two versions of the library, timed in turns (A, B, A, B, ...).

    OPENBLAS_NUM_THREADS=1 python bench/ab_commits.py --old 5927f4a --checkpoint checkpoints/N200-200-10.npz \
        --c 0.5 --n 1000 --reps 3

``--old`` is a git revision (checked out into a temporary worktree); the new side is this
working tree. Each timing is a fresh process, so neither side warms the other's caches; one
warm-up call on 50 images precedes each timing. Prints images/s per run, the medians, the
median of the paired ratios new/old, and whether the two sides returned the same adversarials.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

RUN = r"""
import json, sys, time
import numpy
from minidnn.attacks import batched_lbfgs_attack, choose_targets
from minidnn.checkpoint import load_model
from minidnn.data import load_mnist
from minidnn.networks import input_layout
checkpoint, c, n, dtype = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
net = load_model(checkpoint)
x, y = load_mnist("test", flat=input_layout(net) == "flat")
x, y = x[:n], y[:n]
targets = choose_targets(net, x, y, "random", rng=0)
batched_lbfgs_attack(net, x[:50], y[:50], targets[:50], c, dtype=dtype)
t0 = time.perf_counter()
result = batched_lbfgs_attack(net, x, y, targets, c, dtype=dtype)
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "error": float(result.error_rate),
                  "digest": float(numpy.abs(result.adversarial).sum()), "iterations": float(result.iterations.mean())}))
"""


def timed(tree, args, dtype):
    env = dict(os.environ, PYTHONPATH=tree)
    out = subprocess.run([sys.executable, "-c", RUN, args.checkpoint, str(args.c), str(args.n), dtype],
                         env=env, capture_output=True, text=True, check=True, cwd=tree)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="git revision of the old side")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--c", type=float, required=True)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--dtypes", default="float64,float32")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    here = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                          check=True).stdout.strip()
    args.checkpoint = os.path.abspath(args.checkpoint)
    with tempfile.TemporaryDirectory() as tmp:
        old_tree = os.path.join(tmp, "old")
        subprocess.run(["git", "worktree", "add", "--detach", old_tree, args.old], cwd=here, check=True,
                       capture_output=True)
        try:
            for dtype in args.dtypes.split(","):
                runs = {"old": [], "new": []}
                for rep in range(args.reps):
                    for side, tree in (("old", old_tree), ("new", here)):
                        runs[side].append(timed(tree, args, dtype))
                        r = runs[side][-1]
                        print(f"{dtype} rep {rep} {side}: {args.n / r['seconds']:.1f} images/s "
                              f"(error {100 * r['error']:.2f}%, iterations {r['iterations']:.1f})", flush=True)
                speed = {side: [args.n / r["seconds"] for r in rs] for side, rs in runs.items()}
                pairs = [new / old for old, new in zip(speed["old"], speed["new"])]
                same = runs["old"][0]["digest"] == runs["new"][0]["digest"]
                print(f"{dtype}: median old {statistics.median(speed['old']):.1f}, new "
                      f"{statistics.median(speed['new']):.1f} images/s; new/old median of paired ratios "
                      f"{statistics.median(pairs):.2f} (min {min(pairs):.2f}, max {max(pairs):.2f}); "
                      f"same adversarials: {same}", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", old_tree], cwd=here, capture_output=True)


if __name__ == "__main__":
    main()
