"""Where the batched attack spends its time (cProfile, top functions), on any backend.

    python bench/profile_attack.py --checkpoint checkpoints/N200-200-10.npz --c 0.5 --n 1000 [--backend cupy]
"""
import argparse
import cProfile
import pstats

from minidnn import backend
from minidnn.attacks import batched_lbfgs_attack, lbfgsb
from minidnn.attacks.batched import ALGORITHMS

from common import attack_arguments, attack_case, timer


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    attack_arguments(parser)
    parser.add_argument("--algorithm", default="lbfgsb", choices=sorted(ALGORITHMS))
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--array", action="store_true", help="on CuPy, the line-search step as array operations "
                        "instead of its CUDA kernel (backend.use_fused_kernels(False))")
    parser.add_argument("--top", type=int, default=18)
    args = parser.parse_args()
    backend.set_backend(args.backend)
    backend.set_fused_kernels(backend.fused_kernels() and not args.array)
    net, x, y, targets = attack_case(args.checkpoint, args.n)
    options = {"batch_size": args.batch_size, "dtype": args.dtype, "algorithm": args.algorithm}
    if args.search_rounds is not None:
        options["search_rounds"] = args.search_rounds
    batched_lbfgs_attack(net, x[:50], y[:50], targets[:50], args.c, **options)  # warm-up (compiles CuPy's kernels)
    profile = cProfile.Profile()
    t0 = timer()
    profile.enable()
    result = batched_lbfgs_attack(net, x, y, targets, args.c, **options)
    profile.disable()
    rounds = lbfgsb.default_search_rounds(backend.xp()) if args.search_rounds is None else args.search_rounds
    print(f"{args.n} images, {args.backend} {args.dtype} {args.algorithm} "
          f"(search_rounds {rounds}, batch {args.batch_size}): {timer() - t0:.2f} s, "
          f"mean iterations {result.iterations.mean():.1f}, error {100 * result.error_rate:.2f}%")
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
