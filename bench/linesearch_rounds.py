"""How many rounds of network evaluations the batched L-BFGS-B's line searches take per iteration.

    OPENBLAS_NUM_THREADS=1 python bench/linesearch_rounds.py --checkpoint checkpoints/N200-200-10.npz --c 0.5 \
        [--n 1000] [--dtype float64] [--search-rounds 3]

Wraps ``lbfgsb._search`` (one call per iteration) and counts, for each round within it (first,
second, third, fourth and later), the calls of the objective, the rows they evaluated and the
time until the next round starts (the evaluation plus the line-search step); then the time in
the objective alone per evaluated row and, for an MLP, the rate of its matrix products
(forward and ∂/∂x backward: 4·in·out flops per row and dense layer) beside a plain
(1000 × in) @ (in × out) product's on the first layer's shape.
"""
import argparse
import time
from collections import defaultdict

from minidnn import backend
from minidnn.attacks import batched_lbfgs_attack, lbfgsb

from common import attack_arguments, attack_case


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    attack_arguments(parser)
    args = parser.parse_args()
    backend.set_backend(args.backend)
    net, x, y, targets = attack_case(args.checkpoint, args.n)

    rounds = defaultdict(lambda: [0, 0, 0.0])          # round (0-based, 3 = fourth and later): calls, rows, seconds
    in_objective = [0.0]
    search = lbfgsb._search

    def counted_search(fun, st, max_linesearch, search_rounds):
        starts = []

        def counted_fun(x_try, rows):
            starts.append((time.perf_counter(), len(rows)))
            out = fun(x_try, rows)
            in_objective[0] += time.perf_counter() - starts[-1][0]
            return out
        out = search(counted_fun, st, max_linesearch, search_rounds)
        ends = [t for t, _ in starts[1:]] + [time.perf_counter()]
        for i, ((t0, k), t1) in enumerate(zip(starts, ends)):
            row = rounds[min(i, 3)]
            row[0] += 1
            row[1] += k
            row[2] += t1 - t0
        return out

    lbfgsb._search = counted_search
    try:
        t0 = time.perf_counter()
        result = batched_lbfgs_attack(net, x, y, targets, args.c, dtype=args.dtype, search_rounds=args.search_rounds)
        total = time.perf_counter() - t0
    finally:
        lbfgsb._search = search
    calls = sum(r[0] for r in rounds.values())
    searching = lbfgsb.default_search_rounds(backend.xp()) if args.search_rounds is None else args.search_rounds
    evaluated = sum(r[1] for r in rounds.values())
    print(f"{net.describe()}, {args.n} images, {args.dtype}, search_rounds {searching}: {total:.2f} s, "
          f"mean iterations {result.iterations.mean():.2f}; {calls} calls of the objective, {evaluated} rows evaluated")
    for i in sorted(rounds):
        k, rows, seconds = rounds[i]
        label = "4th and later" if i == 3 else ("1st", "2nd", "3rd")[i]
        print(f"  {label:>13} round: {k:5d} calls, {rows:7d} rows, {seconds:6.2f} s ({1e3 * seconds / k:.2f} ms a call)")
    print(f"  objective alone: {in_objective[0]:.2f} s, {1e6 * in_objective[0] / evaluated:.2f} µs a row")
    dense = [layer for layer in net.layers if type(layer).__name__ == "Dense"]
    if dense and all(type(layer).__name__ in ("Dense", "ReLU", "Sigmoid", "Softmax") for layer in net.layers):
        flops = sum(4 * layer.in_features * layer.out_features for layer in dense)
        xp = backend.xp()
        a = xp.ones((1000, dense[0].in_features), dtype=args.dtype)
        w = xp.ones((dense[0].in_features, dense[0].out_features), dtype=args.dtype)
        backend.to_numpy((a @ w)[:1, :1])
        t0 = time.perf_counter()
        for _ in range(20):
            out = a @ w
        backend.to_numpy(out[:1, :1])                                  # waits for the GPU on CuPy
        plain = 20 * 2 * a.shape[0] * w.shape[0] * w.shape[1] / (time.perf_counter() - t0)
        print(f"  its matrix products: {flops * evaluated / in_objective[0] / 1e9:.1f} GFLOP/s "
              f"({flops} flops a row); a plain {a.shape[0]}×{w.shape[0]} @ {w.shape[0]}×{w.shape[1]}: "
              f"{plain / 1e9:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
