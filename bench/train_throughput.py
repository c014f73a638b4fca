"""Training throughput (examples/s) of the paper's four models: minidnn vs the same model in PyTorch.

    python bench/train_throughput.py [--reps 7] [--models N100-100-10,ConvNet] [--backend cupy] [--trainer]

Same batch (128), optimizer (SGD, momentum 0.9, lr 0.01) and weight decay (1e-3 on dense
weights only) on both sides, same thread count (PyTorch is set to NumPy's BLAS threads), and
the same work (no ∂L/∂x at the first layer). Each repetition times ``steps`` training steps on
MNIST-shaped random data; the runners alternate (common.alternate, with a 1 s pause before each
run on the CPU), and the ratio reported is the median of the paired ratios. ``--trainer`` adds
a runner that makes the same steps through ``Trainer.train_epoch``. On CuPy a third
runner, minidnn with its array code instead of its CUDA kernels (``backend.use_fused_kernels(False)``:
SGD's update, im2col, col2im, max pooling, ReLU, sigmoid, softmax cross-entropy), alternates with them, and the kernels' gain is reported the same way
(unless --array-code or MINIDNN_FUSED_KERNELS=0, when "minidnn" itself is the array code; the JSON
rows say which: cuda_kernels).
"""
import argparse
import json
import statistics

import numpy

from minidnn import backend
from minidnn.losses import SoftmaxCrossEntropy
from minidnn.networks import build_model
from minidnn.training import SGD

from common import (CPU_PAUSE, alternate, blas_threads, machine_info, median_ratio, synchronize, timer,
                    torch_param_groups, torch_twin)

BATCH = 128


def training_setup(name, steps, xp_name):
    """The paper model on ``xp_name``, ``steps`` batches of MNIST-shaped random data (steps, 128, ...)
    with labels, and the optimizer every runner uses: (xp, net, x, y, SGD)."""
    with backend.use_backend(xp_name):
        xp = backend.xp()
        net = build_model(name, rng=0)
        net.astype(module=xp)
        rng = numpy.random.default_rng(0)
        x = xp.asarray(rng.uniform(size=(steps, BATCH) + net.input_shape).astype(numpy.float32))
        y = xp.asarray(rng.integers(0, 10, size=(steps, BATCH)))
    return xp, net, x, y, SGD(net.named_params(), lr=0.01, momentum=0.9, weight_decay=1e-3)


def minidnn_runner(name, steps, xp_name, fused=True):
    xp, net, x, y, opt = training_setup(name, steps, xp_name)
    loss = SoftmaxCrossEntropy()

    def one_step(i):
        opt.zero_grad()
        net.loss_and_backward(x[i], y[i], loss, train=True, need_input_grad=False)   # as Trainer (and PyTorch) train
        opt.step()

    def run():
        t0 = timer()
        with backend.use_fused_kernels(fused):      # on CuPy: the CUDA kernels (unless the environment says no), or the array code
            for i in range(steps):
                one_step(i)
        synchronize(xp)
        return timer() - t0

    def step(i):
        with backend.use_fused_kernels(fused):
            one_step(i)
    run.step = step                                 # one step alone (step_profile)
    return net, run


def trainer_runner(name, steps, xp_name):
    """The same steps through ``Trainer.train_epoch``, as a user trains: shuffled batches gathered
    from one (steps·128)-example array, the losses and error counts read on the host every 20
    batches. Its time against the bare loop above is the trainer's own cost."""
    from minidnn.training import Trainer
    xp, net, x, y, opt = training_setup(name, steps, xp_name)
    x, y = x.reshape((steps * BATCH,) + net.input_shape), y.reshape(-1)
    trainer = Trainer(net, opt, batch_size=BATCH, progress=False)

    def run():
        t0 = timer()
        with backend.use_backend(xp_name):
            trainer.train_epoch(x, y)
        synchronize(xp)
        return timer() - t0
    return run


def step_profile(step, repeats=200):
    """One CuPy training step's host time (issuing its launches) and device time (from an event
    before the call to one after it, on the stream), medians in µs, from cupyx.profiler.benchmark;
    None without cupyx. A device time close to the host time says the GPU waited for the launches
    (launch-bound); a much longer one, that its work took longer than issuing it. (Under the
    emulated CuPy both are the host's time.)"""
    try:
        from cupyx.profiler import benchmark
    except ImportError:
        return None
    result = benchmark(step, (0,), n_repeat=repeats, n_warmup=10, max_duration=5)
    return {"host_us": float(numpy.median(result.cpu_times)) * 1e6,
            "device_us": float(numpy.median(result.gpu_times[0])) * 1e6}


def torch_runner(net, steps, device):
    import torch
    model = torch_twin(net).to(device)
    opt = torch.optim.SGD(torch_param_groups(model, 1e-3), lr=0.01, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    x = torch.rand((steps, BATCH) + net.input_shape, generator=g).to(device)
    y = torch.randint(0, 10, (steps, BATCH), generator=g).to(device)
    loss_fn = torch.nn.CrossEntropyLoss()

    def run():
        t0 = timer()
        for i in range(steps):
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x[i]), y[i]).backward()
            opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        return timer() - t0
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--models", default="N100-100-10,N200-200-10,AE400-10,ConvNet")
    parser.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--array-code", action="store_true", help="CuPy: only minidnn's array code, not its CUDA kernels")
    parser.add_argument("--trainer", action="store_true",
                        help="also time the steps through Trainer.train_epoch (shuffling, host reads of the loss)")
    parser.add_argument("--profile", action="store_true",
                        help="CuPy: also one step's host and device time (cupyx.profiler.benchmark)")
    args = parser.parse_args()
    if args.profile and args.backend != "cupy":
        parser.error("--profile times a step on the GPU: it needs --backend cupy")
    info = machine_info()
    try:
        import torch
        torch.set_num_threads(blas_threads())
        info["torch"] = f"{torch.__version__} ({torch.get_num_threads()} threads)"
    except ImportError:
        torch = None
    device = "cuda" if args.backend == "cupy" else "cpu"
    if torch is not None and device == "cuda" and not torch.cuda.is_available():
        info["torch"] += ", no CUDA: not compared"
        torch = None
    print(json.dumps(info))
    rows = []
    print(f"{'model':<13}{'backend':>8}{'minidnn ex/s':>14}{'torch ex/s':>12}{'ratio':>8}   (median of {args.reps} alternating reps)")
    for name in args.models.split(","):
        steps = 40 if name != "ConvNet" else 8
        if args.backend == "cupy":
            steps *= 5
        kernels = backend.fused_kernels() and not args.array_code
        net, ours = minidnn_runner(name, steps, args.backend, fused=kernels)
        runners = [("minidnn", ours)]
        if args.backend == "cupy" and kernels:
            runners.append(("array code", minidnn_runner(name, steps, args.backend, fused=False)[1]))
        if args.trainer:
            runners.append(("trainer", trainer_runner(name, steps, args.backend)))
        if torch is not None:
            runners.append(("torch", torch_runner(net, steps, device)))
        for _, fn in runners:      # warm-up (allocations, BLAS threads, CUDA kernels)
            fn()
        times = alternate(runners, args.reps, pause=CPU_PAUSE if args.backend == "numpy" else 0.0)
        ex = steps * BATCH
        row = {"model": name, "backend": args.backend, "minidnn_ex_per_s": ex / statistics.median(times["minidnn"]),
               "cuda_kernels": bool(kernels and args.backend == "cupy")}
        if "torch" in times:
            row["torch_ex_per_s"] = ex / statistics.median(times["torch"])
            row["ratio"] = median_ratio(times["torch"], times["minidnn"])   # > 1: minidnn faster
        if "trainer" in times:
            row["trainer_ex_per_s"] = ex / statistics.median(times["trainer"])
            row["trainer_cost"] = median_ratio(times["minidnn"], times["trainer"])   # < 1: the trainer is slower
        if "array code" in times:
            row["array_code_ex_per_s"] = ex / statistics.median(times["array code"])
            row["kernels_gain"] = median_ratio(times["array code"], times["minidnn"])
        if args.profile and args.backend == "cupy":
            for label, runner in runners:
                profile = step_profile(runner.step) if hasattr(runner, "step") else None
                if profile:
                    row[f"step_{label.replace(' ', '_')}"] = profile
                    print(f"  {name} {label}: one step {profile['host_us']:.0f} µs on the host, "
                          f"{profile['device_us']:.0f} µs on the device", flush=True)
        rows.append(row)
        if args.json:                               # after every model: a timeout keeps the rows so far
            with open(args.json, "w") as f:
                json.dump({"machine": info, "rows": rows}, f, indent=1)
        print(f"{name:<13}{args.backend:>8}{row['minidnn_ex_per_s']:>14.0f}"
              f"{row.get('torch_ex_per_s', float('nan')):>12.0f}{row.get('ratio', float('nan')):>8.2f}"
              + (f"   array code {row['array_code_ex_per_s']:.0f} ex/s, kernels {row['kernels_gain']:.2f}x"
                 if "array code" in times else "")
              + (f"   through the Trainer {row['trainer_ex_per_s']:.0f} ex/s ({row['trainer_cost']:.2f}x the bare loop)"
                 if "trainer" in times else ""), flush=True)


if __name__ == "__main__":
    main()
