"""The ``minidnn`` command line: train, evaluate, attack, jacobian, reproduce, gradcheck, info."""
import argparse
import json
import os
import platform
import shutil
import sys
import time


def _backend_args(p):
    p.add_argument("--backend", choices=["numpy", "cupy"], default=None,
                   help="array backend (default: $MINIDNN_BACKEND or numpy)")
    p.add_argument("--data-dir", default=None, help="folder with the four MNIST .gz files "
                   "(default: $MINIDNN_DATA, then ~/.cache/minidnn/mnist, downloading if absent)")


def _setup_backend(args):
    from . import backend
    if getattr(args, "backend", None):
        backend.set_backend(args.backend)


def _number(kind, test, wanted):
    """An argparse type: ``kind`` (int or float) for which ``test`` holds, else an error saying ``wanted``."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not test(value):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value
    return parse


_count = _number(int, lambda v: v >= 1, "a whole number ≥ 1")
_pixels = _number(int, lambda v: v >= 0, "a whole number of pixels ≥ 0")
_whole = _number(int, lambda v: v >= 0, "a whole number ≥ 0")
_positive = _number(float, lambda v: v > 0 and v < float("inf"), "a number > 0")
_non_negative = _number(float, lambda v: 0 <= v < float("inf"), "a number ≥ 0")
_share = _number(float, lambda v: 0 < v <= 1, "a share in (0, 1]")


_c_number = _number(float, lambda v: 0 < v < float("inf"), "'auto' or a number > 0")


def _c_value(text):
    """--c: 'auto' or a number > 0."""
    return text if text == "auto" else _c_number(text)


def cmd_train(args):
    from .experiments.baselines import RECIPES, mnist_splits, test_error, train_model, with_overrides
    from .networks import build_model, input_layout
    from .training import RandomShift, make_schedule
    _setup_backend(args)
    if args.model not in RECIPES:
        raise ValueError(f"unknown model {args.model!r}; choose one of {', '.join(RECIPES)}")
    recipe = with_overrides(RECIPES[args.model], epochs=args.epochs, optimizer=args.optimizer, lr=args.lr,
                            batch_size=args.batch_size, weight_decay=args.weight_decay,
                            schedule=args.schedule, patience=args.patience,
                            pretrain_epochs=args.pretrain_epochs, shift=args.shift)
    make_schedule(recipe.schedule, recipe.epochs)                 # bad options fail before the data is read
    if args.contractive:
        _contractive_lams(args.contractive)
    if recipe.shift:
        RandomShift(recipe.shift)
    variant = "".join(part for part, on in ((f"-split{args.split_seed}", args.split_seed is not None),
                                            (f"-shift{args.shift}", bool(args.shift)),
                                            (f"-limit{args.limit}", bool(args.limit))) if on)
    out = args.out or os.path.join("checkpoints", f"{args.model}-seed{args.seed}{variant}.npz")
    if os.path.exists(out):
        print(f"{out} exists: continuing that run (a finished one is only evaluated again); "
              "delete it or choose another --out to start afresh", flush=True)
    net = build_model(args.model, rng=args.seed)
    data_seed = args.seed if args.split_seed is None else args.split_seed
    data = mnist_splits(input_layout(net), seed=data_seed, data_dir=args.data_dir, limit=args.limit)
    net, penalties, extra = _regularised(net, args)
    if args.split_seed is not None:
        extra["split_seed"] = args.split_seed
    t0 = time.perf_counter()
    net, info = train_model(args.model, recipe, seed=args.seed, data=data, out=out,
                            log=args.log or out.replace(".npz", "") + ".log.jsonl",
                            progress=not args.quiet, net=net, penalties=penalties, info_extra=extra)
    seconds = time.perf_counter() - t0
    print(f"{args.model}: best validation error {100 * info['val_error']:.2f}% at epoch {info['best_epoch']}, "
          f"training error {100 * info['train_error']:.2f}%, {seconds:.0f} s; checkpoint {out}")
    if args.test:
        print(f"{args.model}: test error {100 * test_error(net, data):.2f}%")
    return 0


def _contractive_lams(text):
    """--contractive: 'λ' or 'λ1,λ2,...', each a number ≥ 0."""
    try:
        return [_non_negative(v) for v in text.split(",")]
    except argparse.ArgumentTypeError:
        raise ValueError(f"--contractive: expected λ or λ1,λ2,... (numbers ≥ 0), got {text!r}") from None


def _regularised(net, args):
    """Noise layers and Jacobian penalties asked for on the command line: (net, penalties, info)."""
    from .networks import with_noise
    from .penalties import GlobalContractive, LayerwiseContractive
    info, penalties = {}, []
    if args.train_noise:
        net = with_noise(net, args.train_noise, args.noise_at, rng=args.seed + 2)
        info.update(train_noise=args.train_noise, noise_at=args.noise_at)
    if args.contractive:
        lam = _contractive_lams(args.contractive)
        penalties.append(LayerwiseContractive(net, lam[0] if len(lam) == 1 else lam))
        info["contractive"] = lam
    if args.global_contractive:
        penalties.append(GlobalContractive(net, args.global_contractive, args.global_output))
        info.update(global_contractive=args.global_contractive, global_output=args.global_output)
    return net, penalties, info


def split_seed(meta):
    """The seed of the train/validation split a checkpoint was trained on (its --split-seed, else its --seed)."""
    saved = meta.get("metadata", {})
    return saved.get("split_seed", saved.get("seed", 0))


def cmd_jacobian(args):
    import numpy
    from .backend import to_numpy
    from .checkpoint import load_model
    from .data import subset
    from .experiments.baselines import mnist_splits
    from .networks import input_layout, without_noise
    from .penalties import input_jacobian_norms, layer_norms
    _setup_backend(args)
    net, meta, _ = load_model(args.checkpoint, return_all=True)
    net = without_noise(net)
    data = mnist_splits(input_layout(net), seed=split_seed(meta), data_dir=args.data_dir)
    x = data[f"x_{args.split}"]
    if args.n and args.n < len(x):
        x = x[subset(len(x), args.n, 0)]
    print(f"{net.describe()} on {len(x)} {args.split} images: mean Frobenius norms (sqrt of each example's "
          f"squared norm, then the mean)")
    for output in ("softmax", "logits"):
        norms = to_numpy(input_jacobian_norms(net, x, output))
        print(f"  ||dy/dx||_F, y = {output:<8}: {numpy.sqrt(norms).mean():.4f}")
    per_layer = {}
    for s in range(0, len(x), 1000):
        for name, v in layer_norms(net, x[s:s + 1000]).items():
            per_layer.setdefault(name, []).append(to_numpy(v))
    for name, parts in per_layer.items():
        print(f"  ||dh_j/dh_(j-1)||_F, block {name:<18}: {numpy.sqrt(numpy.concatenate(parts)).mean():.4f}")
    return 0


def cmd_evaluate(args):
    from .checkpoint import load_model
    from .experiments.baselines import mnist_splits
    from .networks import input_layout
    from .training import classification_error
    _setup_backend(args)
    net, meta, _ = load_model(args.checkpoint, return_all=True)
    data = mnist_splits(input_layout(net), seed=split_seed(meta), data_dir=args.data_dir)
    rows = {split: classification_error(net, data[f"x_{split}"], data[f"y_{split}"])
            for split in ("train", "val", "test")}
    if args.json:                   # JSON alone, for scripts
        print(json.dumps({"checkpoint": args.checkpoint, **rows}))
        return 0
    for split, err in rows.items():
        print(f"{split:>5} error: {100 * err:6.2f}%  ({len(data[f'y_{split}'])} images)")
    return 0


def _require(module, flag, extra):
    """Fail before any work when an option needs an optional package that is not installed."""
    import importlib.util
    if importlib.util.find_spec(module) is None:
        raise ValueError(f"{flag} needs {module}, which is not installed: pip install 'minidnn[{extra}]'")


def cmd_attack(args):
    import numpy
    if args.figure:
        _require("matplotlib", "--figure", "plot")
    if args.method == "reference":
        _require("scipy", "--method reference", "attacks")
    from .attacks.protocol import search_c
    from .attacks.run import attack_dataset
    from .attacks.targets import choose_targets
    from .checkpoint import load_model
    from .data import subset
    from .experiments.baselines import mnist_splits
    from .networks import input_layout
    _setup_backend(args)
    net, meta, _ = load_model(args.checkpoint, return_all=True)
    data = mnist_splits(input_layout(net), seed=split_seed(meta), data_dir=args.data_dir)
    x_all, y_all = data[f"x_{args.split}"], data[f"y_{args.split}"]
    n = min(args.n or len(y_all), len(y_all))
    rows = numpy.arange(n) if n == len(y_all) or not args.n else subset(len(y_all), n, args.seed)
    x, y = x_all[rows], y_all[rows]
    rng = numpy.random.default_rng(args.seed)
    options = {"maxiter": args.maxiter}
    if args.method == "batched":
        options.update(batch_size=args.batch_size, dtype=args.dtype, algorithm=args.algorithm, workers=args.workers)
    t0 = time.perf_counter()
    trace = None
    if args.c == "auto":
        search_rows = subset(len(data["y_val"]), min(args.search_n, len(data["y_val"])), args.seed + 1)
        xs, ys = data["x_val"][search_rows], data["y_val"][search_rows]
        ts = choose_targets(net, xs, ys, args.target, rng=numpy.random.default_rng(args.seed + 1))
        c, trace = search_c(lambda c: attack_dataset(net, xs, ys, ts, c, args.method, progress=False, **options),
                            threshold=args.threshold, c0=args.c0, log=print)
        print(f"chosen c = {c:.4g} on {len(ys)} validation images (threshold {100 * args.threshold:.1f}%)")
    else:
        c = args.c
    targets = choose_targets(net, x, y, args.target, rng=rng)
    out = args.out or os.path.splitext(args.checkpoint)[0] + f".adv-{args.split}.npz"
    result = attack_dataset(net, x, y, targets, c, args.method, chunk=args.chunk,
                            partial_dir=out + ".partial", progress=not args.quiet, **options)
    result.meta.update({"checkpoint": args.checkpoint, "split": args.split, "rows_seed": args.seed,
                        "target_rule": args.target, "c_search": trace, "seed": args.seed})
    result.save(out)
    shutil.rmtree(out + ".partial", ignore_errors=True)       # the chunks live on in ``out``
    seconds = time.perf_counter() - t0
    distortion = (f"{result.mean_distortion:.4f}" if result.success.any()
                  else "none (no adversarial succeeded: try a smaller c)")
    print(f"{net.describe()}: {len(result)} {args.split} images, c = {c:.4g}: adversarial error "
          f"{100 * result.error_rate:.2f}%, mean distortion {distortion}, "
          f"target hit {100 * result.summary()['target_hit_rate']:.1f}%, {seconds:.1f} s; saved {out}")
    if args.figure:
        from .attacks.figure import figure_from_result
        figure_from_result(args.figure, result, title=f"{net.describe()}, c = {c:.3g}")
        print(f"figure: {args.figure}")
    return 0


def cmd_reproduce(args):
    from .experiments.reproduce import STAGES, reproduce
    _setup_backend(args)
    stages = args.stages or list(STAGES)
    results_dir = args.results or ("results-quick" if args.quick else "results")
    if args.quick and os.path.abspath(results_dir) == os.path.abspath("results"):
        raise SystemExit("quick output never goes into results/: choose another --results folder")
    reproduce(results_dir, stages, mode="quick" if args.quick else "full", data_dir=args.data_dir,
              progress=not args.quiet, models=args.models.split(",") if args.models else None)
    print(f"see {os.path.join(results_dir, 'REPRODUCTION.md')}")
    return 0


def cmd_gradcheck(args):
    from .gradcheck_suite import run_suite
    report_ok = run_suite(seed=args.seed, verbose=True)
    return 0 if report_ok else 1


def cmd_info(args):
    import numpy
    from . import __version__, backend
    _setup_backend(args)
    print(f"minidnn {__version__}, Python {platform.python_version()}, NumPy {numpy.__version__}")
    print(f"backend: {backend.backend_name()}, default dtype: {backend.float_dtype()}")
    module = backend.xp()
    if backend.backend_name() == "cupy":
        props = module.cuda.runtime.getDeviceProperties(module.cuda.Device().id)
        print(f"CuPy {module.__version__}, device: {props['name'].decode()}")
        print(f"CUDA kernels (SGD's update, im2col/col2im, max pooling, ReLU, sigmoid, softmax cross-entropy, "
              f"the attack's line-search step and Cauchy sums): "
              f"{'on' if backend.fused_kernels() else 'off (MINIDNN_FUSED_KERNELS=0)'}")
    from importlib import metadata          # versions without importing the packages (torch is slow to load)
    wheels = {"scipy": ["scipy"], "cupy": ["cupy", "cupy-cuda12x", "cupy-cuda13x"], "torch": ["torch"],
              "tqdm": ["tqdm"], "matplotlib": ["matplotlib"]}
    for name, dists in wheels.items():
        found = [d for d in dists if _installed_version(metadata, d)]
        print(f"  {name} {_installed_version(metadata, found[0])}" if found else f"  {name}: not installed")
    return 0


def _installed_version(metadata, dist):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def build_parser():
    parser = argparse.ArgumentParser(prog="minidnn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    from .experiments.baselines import RECIPES    # NumPy only
    recipes = "\n".join(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in vars(r).items() if v not in (None, 0)
                                                 and not (k == "pretrain_lr" and not r.pretrain_epochs))
                         for name, r in RECIPES.items())
    p = sub.add_parser("train", help="train one of the paper's models on MNIST",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="Options not given take the model's recipe (chosen on validation, "
                              "docs/baselines.md):\n" + recipes)
    p.add_argument("model", help="N100-100-10, N200-200-10, AE400-10 or ConvNet")
    p.add_argument("--epochs", type=_count, help="(default: the model's recipe, as every option here)")
    p.add_argument("--optimizer", choices=["sgd", "momentum", "nesterov", "adam"])
    p.add_argument("--lr", type=_positive)
    p.add_argument("--batch-size", type=_count)
    p.add_argument("--weight-decay", type=_non_negative, help="λ in loss + (λ/2)·Σ‖W‖² (dense weights only)")
    p.add_argument("--schedule", help="constant, cosine, step:EVERY:GAMMA or exp:GAMMA")
    p.add_argument("--patience", type=_count, help="early stopping: epochs without validation improvement")
    p.add_argument("--pretrain-epochs", type=_whole, help="AE400-10: autoencoder pretraining epochs")
    p.add_argument("--shift", type=_pixels, help="augmentation: move each training image by up to this many pixels "
                   "in each direction (not in the paper; off by default)")
    p.add_argument("--seed", type=_whole, default=0, help="initialisation, shuffling and (unless --split-seed) "
                   "the train/validation split")
    p.add_argument("--split-seed", type=_whole, help="the train/validation split's seed, when it should differ "
                   "from --seed (e.g. several initialisations on one split)")
    p.add_argument("--out", help="checkpoint path (default checkpoints/MODEL-seedS.npz, with -splitK, -shiftP, "
                   "-limitN added for those options); resumed if present")
    p.add_argument("--log", help="JSON-lines log of every epoch (default: beside the checkpoint)")
    p.add_argument("--limit", type=_count, help="use only the first N examples of each split (quick runs)")
    p.add_argument("--test", action="store_true", help="also report the test error at the end")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    p.add_argument("--contractive", help="layer-wise Jacobian penalty (Eq. 6): one λ, or one per block, comma-separated")
    p.add_argument("--global-contractive", type=_non_negative, help="global Jacobian penalty λ·||dy/dx||_F^2 (Eq. 5; MLPs)")
    p.add_argument("--global-output", choices=["softmax", "logits"], default="softmax",
                   help="y of the global penalty: the probabilities (default) or the logits")
    p.add_argument("--train-noise", type=_non_negative, help="Gaussian noise σ during training (GN)")
    p.add_argument("--noise-at", choices=["input", "all"], default="input",
                   help="GN at the input only (L1) or the input and every hidden layer (L*)")
    _backend_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("jacobian", help="mean ||dy/dx||_F (softmax and logits) and per-block norms of a checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("--split", choices=["test", "val", "train"], default="test")
    p.add_argument("--n", type=_count, help="a seeded subset of this many images")
    _backend_args(p)
    p.set_defaults(func=cmd_jacobian)

    p = sub.add_parser("evaluate", help="error of a checkpoint on the train, validation and test splits")
    p.add_argument("checkpoint")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    _backend_args(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("attack", help="adversarial examples against a checkpoint (L-BFGS-B, Eq. 1)")
    p.add_argument("checkpoint")
    p.add_argument("--n", type=_count, help="number of images (a seeded subset; default: the whole split)")
    p.add_argument("--split", choices=["test", "val", "train"], default="test")
    p.add_argument("--c", type=_c_value, default="auto", help="the constant c of Eq. 1, or 'auto' for the paper's search")
    p.add_argument("--search-n", type=_count, default=1000, help="validation images for the c search")
    p.add_argument("--threshold", type=_share, default=0.995, help="error rate the c search must keep")
    p.add_argument("--c0", type=_positive, default=1.0, help="first c the search tries")
    p.add_argument("--target", default="random",
                   choices=["random", "least_likely", "runner_up", "untargeted"])
    p.add_argument("--method", choices=["batched", "reference"], default="batched")
    p.add_argument("--maxiter", type=_count, default=200)
    p.add_argument("--batch-size", type=_count, default=1000, help="batched: examples optimised together")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64", help="batched: precision")
    from .attacks.batched import ALGORITHMS, DEFAULT_ALGORITHM      # NumPy only
    p.add_argument("--algorithm", choices=sorted(ALGORITHMS), default=DEFAULT_ALGORITHM,
                   help="batched: L-BFGS-B's own steps (as the reference) or the cheaper projected L-BFGS")
    p.add_argument("--workers", type=_count, default=1,
                   help="batched: threads sharing the examples (CPU; best with OPENBLAS_NUM_THREADS=1)")
    p.add_argument("--chunk", type=_count, default=1000, help="examples per saved chunk (resume unit)")
    p.add_argument("--seed", type=_whole, default=0)
    p.add_argument("--out", help="adversarial set (.npz); default beside the checkpoint")
    p.add_argument("--figure", help="PNG of originals, adversarials and noise (Figure 2 style)")
    p.add_argument("--quiet", action="store_true")
    _backend_args(p)
    p.set_defaults(func=cmd_attack)

    from .experiments.reproduce import STAGES     # NumPy only: scipy and matplotlib load when used
    p = sub.add_parser("reproduce", help="the paper's tables, ours beside its (resumable)")
    p.add_argument("stages", nargs="*", help="any of: " + ", ".join(STAGES) + " (default: all, in that order)")
    p.add_argument("--quick", action="store_true", help="every stage on reduced data: the pipeline in minutes")
    p.add_argument("--results", help="results folder (default results/, or results-quick/ with --quick)")
    p.add_argument("--models", help="comma-separated subset of the four models (rows of others already saved are "
                   "kept; Table 6 is about N200-200-10, and N100-100-10 for Eq. 5, whatever this says)")
    p.add_argument("--quiet", action="store_true")
    _backend_args(p)
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("gradcheck", help="finite-difference check of every layer kind, as a table")
    p.add_argument("--seed", type=_whole, default=0)
    p.set_defaults(func=cmd_gradcheck)

    p = sub.add_parser("info", help="backend, device and versions")
    p.add_argument("--backend", choices=["numpy", "cupy"], default=None)
    p.set_defaults(func=cmd_info)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume from the last checkpoint", file=sys.stderr)
        return 130
    except BrokenPipeError:          # output piped into e.g. head, which stopped reading: not an error of ours
        try:                         # keep the interpreter's final flush of stdout from failing again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141
    except Exception as exc:   # a clear one-line message for the errors users can fix
        from .backend import BackendError
        from .checkpoint import CheckpointError
        from .data import DataFileError, DownloadError, MNISTNotFoundError
        if isinstance(exc, (BackendError, CheckpointError, DataFileError, DownloadError, MNISTNotFoundError,
                            FloatingPointError, ValueError)):
            print(f"minidnn: error: {exc}", file=sys.stderr)
            return 2
        raise
