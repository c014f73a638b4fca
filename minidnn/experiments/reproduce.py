"""``minidnn reproduce``: the paper's tables from one command, resumable, with our numbers beside its.

Every artifact (trained models, c searches, adversarial sets, summaries) lives in one results
directory, is written atomically, and is reused when present and valid; a run killed at any
point resumes where it stopped. Stages, in order: table1 (baselines and their adversarial
columns), table2 (Gaussian blur), figure1 (test-time noise injection), table3 (autoencoders
trained on adversarials, stacked networks attacked again), figure2, table4 (denoising
autoencoders), table5 (Deep Contractive Networks vs originals), figure3, table6 (N200-200-10
under GN / DCN training, and the global penalty of Eq. 5).
"""
import os
import statistics
import time
from dataclasses import replace

import numpy

from .. import backend
from ..checkpoint import CheckpointError, load_model
from ..networks import build_model, input_layout, with_noise
from ..penalties import GlobalContractive, LayerwiseContractive, input_jacobian_norms
from ..training import classification_error
from ..attacks.result import AttackResult
from . import figures, paper, recovery
from .adversarial import ATTACK_ALGORITHM, protocol_eval, read_json, write_json
from .baselines import RECIPES, mnist_splits, train_model

MODES = {
    # full: the recipes as chosen on validation; the paper's protocol on the whole test set
    "full": {"limit": None, "epochs": None, "search_n": 1000, "eval_n": None, "seeds": (0, 1, 2),
             "dcn_grid": (3e-4, 1e-3, 3e-3, 1e-2, 3e-2), "global_grid": (1e-2, 3e-2, 1e-1, 3e-1, 1.0, 3.0, 10.0),
             # the ConvNet's convolution blocks sum their Jacobian norm over every output position
             # (20·24·24 and 40·8·8 units), so its λ lives lower: 3e-4 already costs 1.6 points
             "dcn_grid_convnet": (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2),
             # Section 3 on a 2-core CPU: seeded subsets where the attacks would take hours (REPRODUCTION.md says so)
             "train_adv_n": None, "train_adv_n_convnet": 5000, "val_adv_n": 1000,
             "stacked_search_n": 300, "stacked_eval_n": 1000, "ae_epochs": None,
             "blur_sigmas": (0.5, 1.0, 1.5, 2.0, 3.0), "noise_passes": 20, "noise_n_convnet": 2000,
             "noise_sigmas": (0.0, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5),
             "dae_sigmas": (0.1, 0.5), "dae_attack_sigmas": (0.1, 0.5)},
    # quick: every stage on reduced data, minutes on a CPU: the pipeline, not the numbers
    "quick": {"limit": 3000, "epochs": 2, "search_n": 60, "eval_n": 100, "seeds": (0,),
              "dcn_grid": (1e-3, 1e-2), "global_grid": (0.1,),
              "train_adv_n": 300, "train_adv_n_convnet": 150, "val_adv_n": 100,
              "stacked_search_n": 40, "stacked_eval_n": 60, "ae_epochs": 15,
              "blur_sigmas": (1.0,), "noise_passes": 20, "noise_n_convnet": None,
              "noise_sigmas": (0.0, 0.1, 0.3), "dae_sigmas": (0.1, 0.5), "dae_attack_sigmas": (0.1,)},
}
STAGES = ("table1", "table2", "figure1", "table3", "figure2", "table4", "table5", "figure3", "table6")


class Run:
    """One reproduction: mode settings, results directory, data cache and stage timings."""

    def __init__(self, results_dir, mode="full", data_dir=None, progress=True, models=None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {sorted(MODES)}")
        unknown = set(models or ()) - set(paper.MODELS)
        if unknown:
            raise ValueError(f"unknown models {sorted(unknown)}; choose from {list(paper.MODELS)}")
        self.dir, self.mode, self.cfg = results_dir, mode, MODES[mode]
        self.models = [m for m in paper.MODELS if not models or m in models]
        self.data_dir, self.progress = data_dir, progress
        self._data, self._rows = {}, {}
        self.timings = read_json(os.path.join(results_dir, "timings.json")) or {}
        _claim_folder(results_dir, mode)

    def log(self, *args):
        if self.progress:
            print(*args, flush=True)

    def data(self, layout, seed=0):
        if (layout, seed) not in self._data:
            self._data[(layout, seed)] = mnist_splits(layout, seed=seed, data_dir=self.data_dir,
                                                      limit=self.cfg["limit"])
        return self._data[(layout, seed)]

    def recipe(self, model):
        r = RECIPES[model]
        if self.cfg["epochs"]:
            r = replace(r, epochs=self.cfg["epochs"], pretrain_epochs=min(r.pretrain_epochs, 1))
        return r

    def ae_recipe(self):
        from .recovery import AE_RECIPE
        return replace(AE_RECIPE, epochs=self.cfg["ae_epochs"]) if self.cfg["ae_epochs"] else AE_RECIPE

    # ---- models ------------------------------------------------------------------------------
    def model(self, model, variant="orig", seed=0, lam=None):
        """Train (or load, or resume) one model variant; returns (net, info)."""
        key = _key(model, variant, seed, lam)
        path = os.path.join(self.dir, "models", key + ".npz")
        if os.path.exists(path):
            try:
                net, meta, _ = load_model(path, return_all=True)
                if meta.get("metadata", {}).get("val_error") is not None:      # finished
                    return net, meta["metadata"]
            except CheckpointError as exc:   # never deleted here: it may be readable by another version
                raise CheckpointError(f"{exc}; move or delete {path} to train this model again") from exc
        net = build_model(model, rng=seed)
        penalties, extra = [], {"variant": variant, "lam": lam}
        if variant in ("gn-l1", "dcn+gn-l1"):
            net = with_noise(net, 0.1, "input", rng=seed + 2)
        elif variant == "gn-lstar":
            net = with_noise(net, 0.1, "all", rng=seed + 2)
        if variant in ("dcn", "dcn+gn-l1"):
            penalties.append(LayerwiseContractive(net, lam))
        elif variant == "global":
            penalties.append(GlobalContractive(net, lam))
        self.log(f"training {key}")
        t0 = time.perf_counter()
        net, info = train_model(model, self.recipe(model), seed=seed, data=self.data(input_layout(net), seed),
                                out=path, progress=self.progress, penalties=penalties, net=net, info_extra=extra)
        info["train_seconds"] = time.perf_counter() - t0
        return net, info

    def evaluate(self, model, variant="orig", seed=0, lam=None, attack=True):
        """Test error, and (attack=True) the protocol's c, adversarial error and mean distortion
        (computed once per run: later calls return the same row)."""
        memo = (model, variant, seed, lam, attack)
        if memo not in self._rows:
            self._rows[memo] = self._evaluate(model, variant, seed, lam, attack)
        return dict(self._rows[memo])

    def _evaluate(self, model, variant, seed, lam, attack):
        net, info = self.model(model, variant, seed, lam)
        key = _key(model, variant, seed, lam)
        data = self.data(input_layout(net), seed)
        row = {"model": model, "variant": variant, "seed": seed, "lam": lam,
               "val_error": info.get("val_error"), "train_error": info.get("train_error"),
               "epochs": len(info.get("history", [])), "seconds_per_epoch": _per_epoch(info),
               "test_error": classification_error(net, data["x_test"], data["y_test"])}
        if attack:
            summary = protocol_eval(net, data, os.path.join(self.dir, "attacks", key), seed=seed,
                                    search_n=self.cfg["search_n"], eval_n=self.cfg["eval_n"], progress=self.progress,
                                    algorithm=ATTACK_ALGORITHM)
            row.update({k: summary[k] for k in ("c", "error_rate", "mean_distortion", "n")})
        return row

    def jacobian_norm(self, net, data, n=1000):
        x = data["x_test"][:n]
        return {out: float(numpy.sqrt(backend.to_numpy(input_jacobian_norms(net, x, out))).mean())
                for out in ("softmax", "logits")}

    def timed(self, stage, fn):
        t0 = time.perf_counter()
        out = fn()
        path = os.path.join(self.dir, "timings.json")
        self.timings = read_json(path) or {}          # re-read: another run may share the folder
        self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - t0
        write_json(path, self.timings)
        return out

    # ---- λ chosen on validation -----------------------------------------------------------------
    def choose_lambda(self, model, variant, grid, limit_error):
        """The largest λ on the grid whose validation error stays ≤ limit_error (seed 0); λs below
        it are not trained (if none passes, the smallest λ, all trained)."""
        path = os.path.join(self.dir, f"lambda-{model}-{variant}.json")
        saved = read_json(path)
        if saved and saved.get("grid") == list(grid) and saved.get("limit_error") == limit_error:
            return saved["chosen"]
        sweep = []
        for lam in sorted(grid, reverse=True):       # largest first: the first that passes is the answer
            try:
                _, info = self.model(model, variant, 0, lam)
            except FloatingPointError as exc:        # too strong a penalty can make training diverge: λ fails
                self.log(f"{model} {variant} λ={lam:g} diverged: {exc}")
                sweep.append({"lam": lam, "val_error": 1.0, "diverged": str(exc)})
                continue
            sweep.append({"lam": lam, "val_error": info["val_error"]})
            if info["val_error"] <= limit_error:
                break
        ok = [s["lam"] for s in sweep if s["val_error"] <= limit_error]
        chosen = max(ok) if ok else min(grid)
        write_json(path, {"grid": list(grid), "limit_error": limit_error, "sweep": sweep, "chosen": chosen,
                          "rule": "largest λ whose validation error ≤ the paper's DCN test error"})
        return chosen


def _claim_folder(results_dir, mode):
    """Mark ``results_dir`` as holding a run of this mode (mode.json), or refuse one that holds the
    other mode's: its finished models and attacks would be reused as if they were this mode's."""
    path = os.path.join(results_dir, "mode.json")
    saved = _folder_mode(results_dir, path)
    if saved is not None and saved != mode:
        raise ValueError(f"{results_dir} holds a {saved} run (see {path}); a {mode} run there would "
                         f"reuse its models and attacks: choose another results folder")
    if not os.path.exists(path):
        os.makedirs(results_dir, exist_ok=True)
        write_json(path, {"mode": mode})


def _folder_mode(results_dir, path):
    """The mode recorded in mode.json; for a folder written before mode.json existed, the mode in its
    REPRODUCTION.md's title; None for a new or empty folder. Anything else is refused."""
    if os.path.exists(path):
        saved = read_json(path)
        if not (isinstance(saved, dict) and saved.get("mode") in MODES):
            raise ValueError(f"{path} is not a mode record ({{\"mode\": \"full\"}} or {{\"mode\": \"quick\"}}): "
                             f"repair it, or choose another results folder")
        return saved["mode"]
    report = os.path.join(results_dir, "REPRODUCTION.md")
    if os.path.exists(report):
        with open(report, encoding="utf-8") as f:
            title = f.readline().strip()
        found = [m for m in MODES if title.endswith(f": {m} mode")]
        if found:
            return found[0]
    earlier = [name for name in ("models", "attacks", "timings.json") if os.path.exists(os.path.join(results_dir, name))]
    if earlier:
        raise ValueError(f"{results_dir} holds results ({', '.join(earlier)}) but no record of their mode: write "
                         f'{{"mode": "full"}} or {{"mode": "quick"}} into {path}, whichever made them, '
                         f"or choose another results folder")
    return None


def _key(model, variant, seed, lam):
    """The name of one trained variant's artifacts, e.g. 'N100-100-10-dcn-l0.003-s1'."""
    return f"{model}-{variant}" + (f"-l{lam:g}" if lam is not None else "") + f"-s{seed}"


def _per_epoch(info):
    hist = info.get("history") or []
    return statistics.mean(h["seconds"] for h in hist) if hist else None


# ---- the stages ----------------------------------------------------------------------------------
def save_rows(run, name, rows):
    """Write ``name``.json: these rows, plus the saved rows of models this run did not cover
    (``--models`` runs one row of a table without losing the others). Returns all of them."""
    path = os.path.join(run.dir, f"{name}.json")
    kept = [r for r in read_json(path) or [] if isinstance(r, dict) and r.get("model") not in run.models]
    merged = sorted(kept + rows, key=lambda r: paper.MODELS.index(r["model"]))     # stable: row order kept
    write_json(path, merged)
    return merged


def table1(run):
    return save_rows(run, "table1", [run.evaluate(m) for m in run.models])


def table5(run):
    rows = []
    for m in run.models:
        seeds = run.cfg["seeds"] if m.startswith("N") else (0,)
        grid = run.cfg.get("dcn_grid_convnet", run.cfg["dcn_grid"]) if m == "ConvNet" else run.cfg["dcn_grid"]
        lam = run.choose_lambda(m, "dcn", grid, paper.TABLE5[m]["dcn_error"] / 100)
        for seed in seeds:
            rows.append(run.evaluate(m, "orig", seed))
            rows.append(run.evaluate(m, "dcn", seed, lam))
    return save_rows(run, "table5", rows)


def table6(run):
    m = "N200-200-10"
    lam = run.choose_lambda(m, "dcn", run.cfg["dcn_grid"], paper.TABLE5[m]["dcn_error"] / 100)
    rows = [run.evaluate(m, "dcn", 0, lam), run.evaluate(m, "gn-l1"), run.evaluate(m, "gn-lstar"),
            run.evaluate(m, "dcn+gn-l1", 0, lam)]
    for g in ("N100-100-10", "N200-200-10"):     # the open question: the global penalty (Eq. 5)
        lam_g = run.choose_lambda(g, "global", run.cfg["global_grid"], paper.TABLE5[g]["dcn_error"] / 100)
        row = run.evaluate(g, "global", 0, lam_g)
        net, _ = run.model(g, "global", 0, lam_g)
        row["jacobian"] = run.jacobian_norm(net, run.data("flat"))
        orig, _ = run.model(g, "orig", 0)
        row["jacobian_orig"] = run.jacobian_norm(orig, run.data("flat"))
        rows.append(row)
    write_json(os.path.join(run.dir, "table6.json"), rows)
    return rows


def _stage_rows(name, fn):
    return lambda run: save_rows(run, name, fn(run))


def _stage_json(name, fn):
    def stage(run):
        out = fn(run)
        write_json(os.path.join(run.dir, f"{name}.json"), out)
        return out
    return stage


def _figure(run, name, draw):
    """Draw one PNG into the results directory; without matplotlib say so instead of failing."""
    path = os.path.join(run.dir, name)
    try:
        draw(path)
    except RuntimeError as exc:               # matplotlib missing: the numbers are still in the tables
        run.log(f"{name} not drawn: {exc}")
        return None
    return path


def figure1(run):
    rows = save_rows(run, "figure1", recovery.figure1(run))
    n_conv = {r["n"] for r in rows if r["model"] == "ConvNet"}
    note = f"ConvNet: first {min(n_conv)} test images" if n_conv and run.cfg["noise_n_convnet"] else ""
    _figure(run, "figure1.png", lambda path: figures.figure1_png(path, rows, note))
    return rows


def figure2(run):
    """Original model vs autoencoder + model, the same test images (needs table3's attacks)."""
    paths = []
    for m in run.models:
        stacked = os.path.join(run.dir, "attacks", f"recovery-AE-{m}+{m}", "adv-test.npz")
        if not os.path.exists(stacked):
            run.log(f"figure2: no stacked attack for {m} yet (run table3)")
            continue
        first, second = recovery.adversarial_test_set(run, m), AttackResult.load(stacked)
        paths.append(_figure(run, f"figure2-{m}.png", lambda path: figures.side_by_side_png(
            path, first, second, (m, "AE+" + m), title=f"Figure 2: {m} and the stacked autoencoder + {m}")))
    return paths


def figure3(run):
    """Original model vs its DCN, the same test images (needs table5's attacks)."""
    paths = []
    for m in run.models:
        saved = read_json(os.path.join(run.dir, f"lambda-{m}-dcn.json"))
        dcn = saved and os.path.join(run.dir, "attacks", _key(m, "dcn", 0, saved["chosen"]), "adv-test.npz")
        if not dcn or not os.path.exists(dcn):
            run.log(f"figure3: no DCN attack for {m} yet (run table5)")
            continue
        first, second = recovery.adversarial_test_set(run, m), AttackResult.load(dcn)
        paths.append(_figure(run, f"figure3-{m}.png", lambda path: figures.side_by_side_png(
            path, first, second, (m, "DCN"), title=f"Figure 3: {m} and its Deep Contractive Network")))
    return paths


STAGE_FUNCTIONS = {"table1": table1, "table2": _stage_rows("table2", recovery.table2), "figure1": figure1,
                   "table3": _stage_json("table3", recovery.table3), "figure2": figure2,
                   "table4": _stage_rows("table4", recovery.table4), "table5": table5, "figure3": figure3,
                   "table6": table6}


def reproduce(results_dir, stages=STAGES, mode="full", data_dir=None, progress=True, models=None):
    """Run the stages (resuming from whatever ``results_dir`` holds), then write REPRODUCTION.md.

    models: run the per-model stages for these models only (all four by default); rows of other
    models already saved are kept. Table 3's cross-model table covers exactly these models; Table 6
    is about N200-200-10 (and N100-100-10 for Eq. 5) whatever ``models`` says.
    """
    run = Run(results_dir, mode, data_dir, progress, models)
    results = {}
    for stage in stages:
        if stage not in STAGE_FUNCTIONS:
            raise ValueError(f"unknown stage {stage!r}; choose from {list(STAGE_FUNCTIONS)}")
        run.log(f"== {stage}")
        results[stage] = run.timed(stage, lambda: STAGE_FUNCTIONS[stage](run))
    from .report import write_report
    path = write_report(run)
    run.log("time per stage (this run and earlier ones in this folder): " +
            ", ".join(f"{k} {run.timings[k]:.0f} s" for k in STAGES if k in run.timings))
    run.log(f"wrote {path}")
    return results
