"""Table 1's adversarial columns with another batched minimiser, beside the committed ones.

The committed results (results/table1.json) were made with the `projected` minimiser. This runs
the same protocol (c searched on 1,000 validation images for ≥ 99.5% error, then all 10,000 test
images, random wrong targets, seed 0) with `--algorithm` (default `lbfgsb`) into its own folder,
and prints both.

    OPENBLAS_NUM_THREADS=1 python bench/table1_minimisers.py --workers 2 > bench/results/table1_minimisers.txt

Reruns reuse the saved search and attacks in --out (the protocol's own caching). The checkpoints
must hold the weights behind the committed results: they are compared with the committed
summaries' fingerprints first.
"""
import argparse
import json
import os

from minidnn.checkpoint import load_model
from minidnn.attacks.batched import ALGORITHMS
from minidnn.attacks.run import weights_fingerprint
from minidnn.experiments.adversarial import protocol_eval, read_json
from minidnn.experiments.baselines import mnist_splits
from minidnn.networks import input_layout

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="N100-100-10,N200-200-10,AE400-10,ConvNet")
    parser.add_argument("--algorithm", default="lbfgsb", choices=sorted(ALGORITHMS))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", default=os.path.join(REPO, "bench", "results", "table1_minimisers"))
    args = parser.parse_args()
    committed = {row["model"]: row for row in json.load(open(os.path.join(REPO, "results", "table1.json")))
                 if row.get("variant") == "orig"}
    rows = []
    for model in args.models.split(","):
        net = load_model(os.path.join(REPO, "checkpoints", f"{model}.npz"))
        saved = read_json(os.path.join(REPO, "results", "attacks", f"{model}-orig-s0", "summary.json")) or {}
        if saved.get("weights_sha1") != weights_fingerprint(net):
            raise SystemExit(f"checkpoints/{model}.npz is not the model behind results/ (weights differ): "
                             "the comparison would be meaningless")
        data = mnist_splits(input_layout(net), seed=0)
        s = protocol_eval(net, data, os.path.join(args.out, f"{model}-{args.algorithm}"), seed=0, search_n=1000,
                          progress=False, algorithm=args.algorithm, workers=args.workers)
        old = committed.get(model, {})
        row = {"model": model, "algorithm": args.algorithm, "c": s["c"], "error_rate": s["error_rate"],
               "mean_distortion": s["mean_distortion"], "seconds": s["search_seconds"] + s["attack_seconds"],
               "committed_projected": {k: old.get(k) for k in ("c", "error_rate", "mean_distortion")}}
        rows.append(row)
        print(f"{model}: {args.algorithm} c = {s['c']:.4g}, error {100 * s['error_rate']:.2f}%, distortion "
              f"{s['mean_distortion']:.4f} ({row['seconds']:.0f} s) | committed (projected): c = {old.get('c')}, "
              f"error {old.get('error_rate')}, distortion {old.get('mean_distortion')}", flush=True)
    with open(os.path.join(args.out, f"summary-{args.algorithm}.json"), "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
