"""How much do the reference attack's verdicts move under tiny changes?

If scipy's L-BFGS-B gave different verdicts after changes far below the attack's own scale, no
batched attack could agree with it closer than that. Two such changes, each on the same images,
model, c and targets as the plain reference:

* start: every run starts 1e-9 (uniform, seeded) away from x instead of at x (clipped to the box);
* permuted: the pixels permuted (seeded) in the images and in the first layer's weights, the
  same function with every sum in the first layer taken in another order.

    python bench/reference_stability.py --checkpoint checkpoints/N200-200-10.npz --c 2 --n 1000
"""
import argparse
import json

import numpy

from minidnn.attacks import choose_targets, lbfgsb_attack
from minidnn.attacks.objective import network_copy
from minidnn.data import load_mnist

from common import load_paper_checkpoint, machine_info, timer


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--c", type=float, required=True)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--json")
    args = parser.parse_args()
    net64 = network_copy(load_paper_checkpoint(args.checkpoint), numpy.float64, numpy)
    x, y = load_mnist("test", flat=True)
    x, y = x[:args.n].astype(numpy.float64), y[:args.n]
    targets = choose_targets(net64, x, y, "random", rng=0)
    out = {"machine": machine_info(), "model": net64.describe(), "c": args.c, "n": args.n}

    t0 = timer()
    plain = lbfgsb_attack(net64, x, y, targets, args.c, net64=net64).success
    out["reference_seconds"] = timer() - t0
    out["reference_error_rate"] = float(plain.mean())

    starts = numpy.clip(x + numpy.random.default_rng(5).uniform(-1e-9, 1e-9, x.shape), 0, 1)
    moved = lbfgsb_attack(net64, x, y, targets, args.c, net64=net64, start=starts).success

    perm = numpy.random.default_rng(5).permutation(x.shape[1])
    permuted_net = network_copy(net64)
    first = next(iter(permuted_net.named_params().values()))        # the first layer's weights (784, width)
    first.data = numpy.ascontiguousarray(first.data[perm])
    permuted = lbfgsb_attack(permuted_net, numpy.ascontiguousarray(x[:, perm]), y, targets, args.c,
                             net64=permuted_net).success

    for name, verdicts in (("start_1e-9", moved), ("permuted_pixels", permuted)):
        out[name] = {"error_rate": float(verdicts.mean()), "verdicts_differ": int((verdicts != plain).sum())}
        print(f"{name}: error {100 * verdicts.mean():.1f}% (plain reference {100 * plain.mean():.1f}%), "
              f"verdicts differ on {out[name]['verdicts_differ']} of {args.n} images")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
