"""The matrix products of one MLP training step, timed alone: the floor under minidnn's step.

    OPENBLAS_NUM_THREADS=1 python bench/step_products.py [--models N100-100-10,N200-200-10,AE400-10]

For each dense layer of the paper's MLPs at batch 128, float32: the forward product x·W, the weight
gradient xᵀ·g, and the input gradient g·Wᵀ except at the first layer (training skips it). NumPy
calls BLAS (here OpenBLAS) for each, so this is what minidnn's step costs with nothing around the products. Median of
7 repetitions of 200 steps, in ms per step (bench/RESULTS.md, "Training throughput").
"""
import argparse
import statistics

import numpy

from common import blas_threads, timer
from minidnn.networks import build_model

BATCH = 128


def products(name, rng):
    sizes = [(layer.in_features, layer.out_features) for layer in build_model(name, rng=0).layers
             if type(layer).__name__ == "Dense"]
    operands = [(rng.standard_normal((BATCH, a)).astype(numpy.float32), rng.standard_normal((a, b)).astype(numpy.float32),
                 rng.standard_normal((BATCH, b)).astype(numpy.float32)) for a, b in sizes]

    def step():
        for i, (x, W, g) in enumerate(operands):
            x @ W                       # forward
            x.T @ g                     # ∂W
            if i:
                g @ W.T                 # ∂x (not at the first layer)
    return sizes, step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="N100-100-10,N200-200-10,AE400-10")
    args = parser.parse_args()
    rng = numpy.random.default_rng(0)
    print(f"BLAS threads: {blas_threads()}")
    for name in args.models.split(","):
        sizes, step = products(name, rng)
        for _ in range(20):
            step()
        times = []
        for _ in range(7):
            t0 = timer()
            for _ in range(200):
                step()
            times.append((timer() - t0) / 200)
        print(f"{name:<13} dense layers {sizes}: {1e3 * statistics.median(times):.3f} ms per step in the products alone")


if __name__ == "__main__":
    main()
