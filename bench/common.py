"""Shared helpers for the benchmarks: machine description, PyTorch twins of the paper's models, timing.

``MINIDNN_EMULATE_CUPY=1`` runs the scripts' CuPy paths on CuPy emulated on the CPU
(tests/support/emulated_cupy.py): a dry run of a GPU session (``bench/gpu_session.sh``) before
spending device time; its timings mean nothing.
"""
import functools
import os
import platform
import statistics
import sys
import time
import types

import numpy


def _host_benchmark(func, args=(), kwargs={}, n_repeat=10000, *, name=None, n_warmup=10, max_duration=float("inf"),
                    devices=None):
    """cupyx.profiler.benchmark (its signature) for the emulated CuPy: host times, reported as device
    times too (there is no device)."""
    for _ in range(n_warmup):
        func(*args, **kwargs)
    times, start = [], time.perf_counter()
    while len(times) < n_repeat and time.perf_counter() - start < max_duration:
        t0 = time.perf_counter()
        func(*args, **kwargs)
        times.append(time.perf_counter() - t0)
    return types.SimpleNamespace(cpu_times=numpy.array(times), gpu_times=numpy.array([times]))


if os.environ.get("MINIDNN_EMULATE_CUPY") == "1":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
    from support import emulated_cupy
    if emulated_cupy.install() is not None:          # and cupyx.profiler.benchmark, timing on the host
        profiler = types.ModuleType("cupyx.profiler")
        profiler.benchmark = _host_benchmark
        sys.modules["cupyx"] = types.ModuleType("cupyx")
        sys.modules["cupyx"].profiler = sys.modules["cupyx.profiler"] = profiler


def machine_info():
    """A one-paragraph description of where the numbers were measured."""
    import minidnn
    info = {"python": platform.python_version(), "numpy": numpy.__version__, "minidnn": minidnn.__version__,
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
    try:
        from threadpoolctl import threadpool_info
        blas = [f"{p['internal_api']} {p.get('version')} ({p['num_threads']} threads)" for p in threadpool_info()]
        info["blas"] = ", ".join(blas)
    except ImportError:
        pass
    try:
        import torch
        info["torch"] = f"{torch.__version__} ({torch.get_num_threads()} threads)"
    except ImportError:
        info["torch"] = "not installed"
    try:
        import cupy
        info["cupy"] = cupy.__version__
        info["gpu"] = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    except Exception:
        pass
    return info


def blas_threads():
    """NumPy's BLAS thread count (threadpoolctl if installed, else the environment, else all cores)."""
    try:
        from threadpoolctl import threadpool_info
        return max(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")
    except (ImportError, ValueError):
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            if os.environ.get(var):
                return int(os.environ[var])
        return os.cpu_count()


def torch_twin(net):
    """The same architecture in PyTorch (float32), copying minidnn's initial weights."""
    import torch
    from minidnn import backend
    mods = []
    for layer in net.layers:
        kind = type(layer).__name__
        if kind == "Dense":
            m = torch.nn.Linear(layer.in_features, layer.out_features)
            m.weight.data = torch.tensor(backend.to_numpy(layer.params["W"].data).T.copy())
            m.bias.data = torch.tensor(backend.to_numpy(layer.params["b"].data).copy())
        elif kind == "Conv2D":
            m = torch.nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding)
            m.weight.data = torch.tensor(backend.to_numpy(layer.params["W"].data).copy())
            m.bias.data = torch.tensor(backend.to_numpy(layer.params["b"].data).copy())
        elif kind == "MaxPool2D":
            m = torch.nn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding)
        else:
            m = {"ReLU": torch.nn.ReLU, "Sigmoid": torch.nn.Sigmoid, "Tanh": torch.nn.Tanh,
                 "Flatten": torch.nn.Flatten}[kind]()
        mods.append(m)
    return torch.nn.Sequential(*mods)


def torch_param_groups(model, weight_decay):
    """Decay on Linear weights only (no biases, no conv kernels): the paper's and minidnn's rule."""
    import torch
    decay, rest = [], []
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            decay.append(m.weight)
            rest.append(m.bias)
        elif isinstance(m, torch.nn.Conv2d):
            rest += [m.weight, m.bias]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


# Between two timed runs on the CPU: long enough for the idle threads of the library that ran last
# to stop spinning (OpenBLAS's and PyTorch's OpenMP threads spin for a while after their work, on the
# cores the next runner needs). Measured on N100-100-10 with two threads: without a pause PyTorch ran
# at 121,820 ex/s and minidnn at 238,456; with 0.5 s, 215,042 and 300,803; with 1 s, 237,998 and 329,781.
CPU_PAUSE = 1.0


def alternate(runners, reps, pause=0.0):
    """Run each (name, fn) in turn ``reps`` times; fn returns seconds. Returns {name: [seconds...]}.

    Repetition r starts with runner r mod k, and the k repetitions after the first k go backwards:
    within every 2k repetitions, two or three runners each come right after each other equally often
    (more runners each follow only their neighbours in the list). ``pause`` seconds of sleep come
    before every run (CPU_PAUSE on the CPU)."""
    times = {name: [] for name, _ in runners}
    k = len(runners)
    for r in range(reps):
        order = runners[r % k:] + runners[:r % k]
        for name, fn in (order[::-1] if (r // k) % 2 else order):
            time.sleep(pause)
            times[name].append(fn())
    return times


def median_ratio(a, b):
    """Median over repetitions of a[i] / b[i] (paired, since they alternate)."""
    return statistics.median(x / y for x, y in zip(a, b))


def timer():
    return time.perf_counter()


def synchronize(xp=None):
    """Wait for the GPU's queued work when ``xp`` (default: the backend's module) is CuPy; nothing on
    the CPU."""
    if xp is None:
        from minidnn import backend
        xp = backend.xp()
    if getattr(xp, "cuda", None) is not None:
        xp.cuda.get_current_stream().synchronize()


def timed(totals, label, fn, sync=False, calls=None):
    """fn wrapped to add its wall time to totals[label] (with ``sync``, the GPU's work in it too:
    the device is synchronised at both ends) and, given a Counter ``calls``, to count its calls."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if sync:
            synchronize()
        t0 = timer()
        try:
            return fn(*args, **kwargs)
        finally:
            if sync:
                synchronize()
            totals[label] += timer() - t0
            if calls is not None:
                calls[label] += 1
    return wrapper


def attack_arguments(parser):
    """The options every attack benchmark on one model takes: checkpoint, c, images, backend, dtype,
    search_rounds."""
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--c", type=float, required=True)
    parser.add_argument("--n", type=int, default=1000, help="the first N test images")
    parser.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])
    parser.add_argument("--dtype", default="float64")
    parser.add_argument("--search-rounds", type=int,
                        help="lbfgsb: see minimize_box (default: 3 on CuPy, no waiting on NumPy)")


def load_paper_checkpoint(path):
    """The network in ``path``, or a one-line exit saying how to make it (the bench scripts time the
    paper's trained models, named as docs/baselines.md trains them)."""
    from minidnn.checkpoint import CheckpointError, load_model
    try:
        return load_model(path)
    except CheckpointError as exc:
        model = os.path.basename(path).split(".npz")[0]
        hint = (f"; train it first: minidnn train {model} --out {path}" if not os.path.exists(path) else "")
        raise SystemExit(f"{exc}{hint}") from None


def attack_case(checkpoint, n=None):
    """The model, the first n MNIST test images in its layout, their labels and random wrong targets
    from seed 0 (the same targets for the first n whatever n: one draw per image, in order)."""
    from minidnn.attacks import choose_targets
    from minidnn.data import load_mnist
    from minidnn.networks import input_layout
    net = load_paper_checkpoint(checkpoint)
    x, y = load_mnist("test", flat=input_layout(net) == "flat")
    x, y = x[:n], y[:n]
    return net, x, y, choose_targets(net, x, y, "random", rng=0)
