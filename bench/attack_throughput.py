"""Adversarial examples per second: reference (scipy, per example) vs batched (NumPy / CuPy),
with the agreement between them measured in the same run, and the reference attack with
PyTorch computing the gradients (what a user would write instead) when torch is installed.

    python bench/attack_throughput.py --checkpoint checkpoints/N200-200-10.npz --c 0.5 --n 1000

Every batched variant (--variants ALGORITHM:DTYPE[:SEARCH_ROUNDS][:array],...) is timed and
checked against the same reference results. ``array``: on CuPy, the line-search step as array
operations instead of its CUDA kernel (``backend.use_fused_kernels(False)``), for comparison.

Agreement is reported at the given c (the protocol's) and at a c where the success rate
is between 30% and 70% (found by a scan on 200 images), where disagreement would show.
"""
import argparse
import json
import math

import numpy

from minidnn import backend
from minidnn.attacks import batched_lbfgs_attack, choose_targets, lbfgsb_attack
from minidnn.attacks.objective import network_copy
from minidnn.networks import input_layout

from common import attack_case, machine_info, timer, torch_twin


def torch_reference(net, x, labels, targets, c, maxiter=200):
    """scipy L-BFGS-B per example with torch autograd gradients (float64)."""
    import torch
    from scipy.optimize import minimize
    model = torch_twin(network_copy(net, numpy.float64)).double()
    adversarial = numpy.empty_like(x)
    for n in range(len(x)):
        x0 = torch.tensor(x[n:n + 1])
        target = torch.tensor(targets[n:n + 1])

        def fun(flat):
            xa = torch.tensor(flat.reshape(x0.shape), requires_grad=True)
            f = c * ((xa - x0) ** 2).sum() + torch.nn.functional.cross_entropy(model(xa), target, reduction="sum")
            f.backward()
            return f.item(), xa.grad.numpy().reshape(-1).astype(numpy.float64)

        res = minimize(fun, x[n].reshape(-1), jac=True, method="L-BFGS-B", bounds=[(0, 1)] * x[n].size,
                       options={"maxiter": maxiter})
        adversarial[n] = res.x.reshape(x[n].shape)
    return adversarial


def parse_variant(text):
    """'lbfgsb:float32:3:array' -> ('lbfgsb', 'float32', {'search_rounds': 3}, fused=False)."""
    algorithm, dtype, *rest = text.split(":")
    options = {"search_rounds": int(r) for r in rest if r != "array"}
    return algorithm, dtype, options, "array" not in rest


def agreement(ref, bat):
    return {"success_ref": ref.error_rate, "success_batched": bat.error_rate,
            "success_diff_points": 100 * abs(ref.error_rate - bat.error_rate),
            "distortion_ref": ref.mean_distortion, "distortion_batched": bat.mean_distortion,
            "distortion_rel_diff": abs(bat.mean_distortion / ref.mean_distortion - 1),
            "iterations_ref": float(ref.iterations.mean()), "iterations_batched": float(bat.iterations.mean()),
            "verdicts_differ": int((ref.success != bat.success).sum()), "n": len(ref)}


def mid_c(x, y, t, c_hi, attack):
    """A c with success between 30% and 70% on these images (scan upward from c_hi by factors of 2)."""
    c = c_hi
    for _ in range(20):
        rate = attack(x, y, t, c).error_rate
        if 0.3 <= rate <= 0.7:
            return c, rate
        c = c * 2 if rate > 0.7 else c / math.sqrt(2)
    raise RuntimeError("no c with success in [30%, 70%] found")


def protocol_c(net, dtype, batch_size, algorithm):
    """The paper's c for this model: search_c with the batched attack on 1,000 validation images."""
    from minidnn.attacks.protocol import search_c
    from minidnn.data import subset
    from minidnn.experiments.baselines import mnist_splits
    data = mnist_splits(input_layout(net), seed=0)
    rows = subset(len(data["y_val"]), 1000, 1)
    xs, ys = data["x_val"][rows], data["y_val"][rows]
    ts = choose_targets(net, xs, ys, "random", rng=1)
    t0 = timer()
    c, _ = search_c(lambda c: batched_lbfgs_attack(net, xs, ys, ts, c, dtype=dtype, batch_size=batch_size,
                                                   algorithm=algorithm))
    return c, timer() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--c", default="auto", help="the protocol's c for this model, or 'auto' to search it "
                        "(1,000 validation images, ≥ 99.5%% error) with the batched attack first")
    parser.add_argument("--n", type=int, default=1000, help="images for the agreement check")
    parser.add_argument("--n-speed", type=int, default=10000, help="images for the batched timing")
    parser.add_argument("--n-torch", type=int, default=100, help="images for the torch-gradient reference")
    parser.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])
    parser.add_argument("--variants", default="lbfgsb:float64,lbfgsb:float32,projected:float64,projected:float32",
                        help="batched ALGORITHM:DTYPE[:SEARCH_ROUNDS] variants to measure, comma-separated")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1, help="threads for the batched attack (with one BLAS thread)")
    parser.add_argument("--json")
    args = parser.parse_args()
    backend.set_backend(args.backend)
    variants = args.variants.split(",")
    net, x, y, targets = attack_case(args.checkpoint)           # the whole test split
    info = machine_info()
    print(json.dumps(info))
    first_algorithm, first_dtype = parse_variant(variants[0])[:2]
    if args.c == "auto":
        args.c, search_s = protocol_c(net, first_dtype, args.batch_size, first_algorithm)
        print(f"protocol c = {args.c:.4g} (search: {search_s:.1f} s)")
    else:
        args.c = float(args.c)
    out = {"machine": info, "model": net.describe(), "c": args.c, "backend": args.backend, "workers": args.workers,
           "variants": {}}
    n = args.n
    xa, ya, ta = x[:n], y[:n], targets[:n]

    t0 = timer()
    ref = lbfgsb_attack(net, xa, ya, ta, args.c)
    out["reference_ex_per_s"] = n / (timer() - t0)
    kernels = backend.fused_kernels()                                   # as the environment set it
    out["cuda_kernels"] = kernels and args.backend == "cupy"            # variants without ':array' use them
    algorithm, dtype, options, fused = parse_variant(variants[0])      # the scan uses the first variant
    with backend.use_fused_kernels(kernels and fused):
        c_mid, rate = mid_c(x[:200], y[:200], targets[:200], args.c,
                            lambda xs, ys, ts, c: batched_lbfgs_attack(net, xs, ys, ts, c, dtype=dtype,
                                                                       algorithm=algorithm, **options))
    ref_mid = lbfgsb_attack(net, xa, ya, ta, c_mid)
    out["c_mid"] = c_mid
    print(f"{net.describe()}, {n} images: reference {out['reference_ex_per_s']:.1f} ex/s; protocol c = "
          f"{args.c:.4g}, mid c = {c_mid:.4g} (success {100 * rate:.0f}% in the scan)")

    m = min(args.n_speed, len(x))
    for name in variants:
        try:
            algorithm, dtype, options, fused = parse_variant(name)
            backend.set_fused_kernels(kernels and fused)
            attack = lambda xs, ys, ts, c: batched_lbfgs_attack(net, xs, ys, ts, c, dtype=dtype, algorithm=algorithm,
                                                               batch_size=args.batch_size, workers=args.workers,
                                                               **options)
            row = {"at_protocol_c": agreement(ref, attack(xa, ya, ta, args.c)),
                   "at_mid_c": agreement(ref_mid, attack(xa, ya, ta, c_mid))}
            t0 = timer()
            big = attack(x[:m], y[:m], targets[:m], args.c)
            big_s = timer() - t0
            row.update(batched_ex_per_s=m / big_s, batched_seconds=big_s, n_speed=m, error_rate=big.error_rate,
                       speedup_vs_reference=m / big_s / out["reference_ex_per_s"])
            out["variants"][name] = row
            print(f"  {name}: {m} images in {big_s:.1f} s = {m / big_s:.1f} ex/s = "
                  f"{row['speedup_vs_reference']:.1f}x the reference (error {100 * big.error_rate:.2f}%)")
            for where in ("at_protocol_c", "at_mid_c"):
                a = row[where]
                print(f"    {where}: success {100 * a['success_ref']:.1f}% / {100 * a['success_batched']:.1f}% "
                      f"({a['success_diff_points']:.1f} pt), distortion {a['distortion_ref']:.5f} / "
                      f"{a['distortion_batched']:.5f} ({100 * a['distortion_rel_diff']:.2f}%), iterations "
                      f"{a['iterations_ref']:.1f} / {a['iterations_batched']:.1f}, verdicts differ on "
                      f"{a['verdicts_differ']} of {a['n']} images", flush=True)
        except Exception as exc:           # a failing variant is reported, and the others still run
            import traceback
            traceback.print_exc()
            print(f"  {name}: FAILED ({type(exc).__name__}: {exc})", flush=True)
            out["variants"][name] = {"failed": f"{type(exc).__name__}: {exc}"}
        finally:
            backend.set_fused_kernels(kernels)
    try:
        import torch
        k = args.n_torch
        if not k:
            raise ImportError
        t0 = timer()
        torch_reference(net, xa[:k].astype(numpy.float64), ya[:k], ta[:k], args.c)
        out["torch_reference_ex_per_s"] = k / (timer() - t0)
        print(f"  reference with torch gradients: {out['torch_reference_ex_per_s']:.1f} ex/s "
              f"(torch {torch.__version__}); minidnn reference / torch reference = "
              f"{out['reference_ex_per_s'] / out['torch_reference_ex_per_s']:.2f}")
    except ImportError:
        print("  no torch-gradient reference (torch not installed, or --n-torch 0)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
