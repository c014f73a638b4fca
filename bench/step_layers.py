"""Where one training step's time goes, layer by layer, on the CPU.

    python bench/step_layers.py [--models N100-100-10,ConvNet] [--steps 1000]

Batch 128 of random MNIST-shaped data, SGD with momentum 0.9 and weight decay 1e-3 (as
bench/train_throughput.py), ∂L/∂x skipped at the first layer as in training. Each layer's
forward and backward, the loss, and the optimizer's step are timed around their calls (a
wall-clock reading before and after each); "rest" is the step's time outside them (Python,
the network's loop). Means over ``steps`` steps after 20 of warm-up, in µs
(bench/RESULTS.md, "Training throughput").
"""
import argparse
import collections

from common import blas_threads, timed, timer
from minidnn.losses import SoftmaxCrossEntropy
from train_throughput import training_setup


def profile(name, steps):
    _, net, x, y, opt = training_setup(name, 1, "numpy")
    x, y = x[0], y[0]
    loss = SoftmaxCrossEntropy()
    totals = collections.Counter()
    for i, layer in enumerate(net.layers):     # instance attributes shadow the methods
        layer.forward = timed(totals, f"{i}: {type(layer).__name__} forward", layer.forward)
        layer.backward = timed(totals, f"{i}: {type(layer).__name__} backward", layer.backward)
    loss.forward = timed(totals, "loss forward", loss.forward)
    loss.backward = timed(totals, "loss backward", loss.backward)
    step = timed(totals, "optimizer step (SGD, momentum, decay)", opt.step)
    for i in range(20 + steps):
        if i == 20:
            totals.clear()
            t0 = timer()
        opt.zero_grad()
        net.loss_and_backward(x, y, loss, train=True, need_input_grad=False)
        step()
    whole = (timer() - t0) / steps
    rows = {k: v / steps for k, v in totals.items()}
    rows["rest"] = whole - sum(rows.values())
    return whole, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="N100-100-10,ConvNet")
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()
    print(f"BLAS threads: {blas_threads()}")
    for name in args.models.split(","):
        steps = args.steps if name != "ConvNet" else max(1, args.steps // 20)
        whole, rows = profile(name, steps)
        print(f"\n{name}: {1e6 * whole:.1f} µs per step ({steps} steps)")
        for label, seconds in sorted(rows.items(), key=lambda kv: -kv[1]):
            print(f"  {label:<40}{1e6 * seconds:>10.1f} µs  {100 * seconds / whole:5.1f}%")


if __name__ == "__main__":
    main()
