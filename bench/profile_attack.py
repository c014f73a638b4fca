"""Where the batched attack spends its time (cProfile, top functions), on any backend.

    python bench/profile_attack.py --checkpoint checkpoints/N200-200-10.npz --c 0.5 --n 1000 [--backend cupy]
"""
import argparse
import cProfile
import pstats

from minidnn import backend
from minidnn.attacks import batched_lbfgs_attack, choose_targets
from minidnn.attacks.batched import ALGORITHMS
from minidnn.checkpoint import load_model
from minidnn.data import load_mnist
from minidnn.networks import input_layout

from common import timer


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--c", type=float, required=True)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])
    parser.add_argument("--dtype", default="float64")
    parser.add_argument("--algorithm", default="lbfgsb", choices=sorted(ALGORITHMS))
    parser.add_argument("--top", type=int, default=18)
    args = parser.parse_args()
    backend.set_backend(args.backend)
    net = load_model(args.checkpoint)
    x, y = load_mnist("test", flat=input_layout(net) == "flat")
    x, y = x[:args.n], y[:args.n]
    targets = choose_targets(net, x, y, "random", rng=0)
    batched_lbfgs_attack(net, x[:50], y[:50], targets[:50], args.c, dtype=args.dtype, algorithm=args.algorithm)  # warm-up
    profile = cProfile.Profile()
    t0 = timer()
    profile.enable()
    result = batched_lbfgs_attack(net, x, y, targets, args.c, dtype=args.dtype, algorithm=args.algorithm)
    profile.disable()
    print(f"{args.n} images, {args.backend} {args.dtype} {args.algorithm}: {timer() - t0:.2f} s, "
          f"mean iterations {result.iterations.mean():.1f}, error {100 * result.error_rate:.2f}%")
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
