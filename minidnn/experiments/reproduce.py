"""``minidnn reproduce``: the paper's tables from one command, resumable, with our numbers beside its.

Every artifact (trained models, c searches, adversarial sets, summaries) lives in one results
directory, is written atomically, and is reused when present and valid; a run killed at any
point resumes where it stopped. Stages implemented so far: table1 (baselines and their
adversarial columns), table5 (Deep Contractive Networks vs originals), table6 (N200-200-10
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
from . import paper
from .adversarial import protocol_eval, read_json, write_json
from .baselines import RECIPES, mnist_splits, train_model

MODES = {
    # full: the recipes as chosen on validation; the paper's protocol on the whole test set
    "full": {"limit": None, "epochs": None, "search_n": 1000, "eval_n": None, "seeds": (0, 1, 2),
             "dcn_grid": (3e-4, 1e-3, 3e-3, 1e-2, 3e-2), "global_grid": (1e-2, 3e-2, 1e-1, 3e-1, 1.0)},
    # quick: every stage on reduced data, minutes on a CPU: the pipeline, not the numbers
    "quick": {"limit": 3000, "epochs": 2, "search_n": 60, "eval_n": 100, "seeds": (0,),
              "dcn_grid": (1e-3, 1e-2), "global_grid": (0.1,)},
}
STAGES = ("table1", "table5", "table6")


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
        self._data = {}
        self.timings = read_json(os.path.join(results_dir, "timings.json")) or {}
        os.makedirs(results_dir, exist_ok=True)

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
            except CheckpointError:
                pass                       # unreadable: the trainer below starts it again
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
        """Test error, and (attack=True) the protocol's c, adversarial error and mean distortion."""
        net, info = self.model(model, variant, seed, lam)
        key = _key(model, variant, seed, lam)
        data = self.data(input_layout(net), seed)
        row = {"model": model, "variant": variant, "seed": seed, "lam": lam,
               "val_error": info.get("val_error"), "train_error": info.get("train_error"),
               "epochs": len(info.get("history", [])), "seconds_per_epoch": _per_epoch(info),
               "test_error": classification_error(net, data["x_test"], data["y_test"])}
        if attack:
            summary = protocol_eval(net, data, os.path.join(self.dir, "attacks", key), seed=seed,
                                    search_n=self.cfg["search_n"], eval_n=self.cfg["eval_n"], progress=self.progress)
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
        """The largest λ on the grid whose validation error stays ≤ limit_error (seed 0)."""
        path = os.path.join(self.dir, f"lambda-{model}-{variant}.json")
        saved = read_json(path)
        if saved and saved.get("grid") == list(grid) and saved.get("limit_error") == limit_error:
            return saved["chosen"]
        sweep = []
        for lam in grid:
            _, info = self.model(model, variant, 0, lam)
            sweep.append({"lam": lam, "val_error": info["val_error"]})
        ok = [s["lam"] for s in sweep if s["val_error"] <= limit_error]
        chosen = max(ok) if ok else min(grid)
        write_json(path, {"grid": list(grid), "limit_error": limit_error, "sweep": sweep, "chosen": chosen,
                          "rule": "largest λ whose validation error ≤ the paper's DCN test error"})
        return chosen


def _key(model, variant, seed, lam):
    """The name of one trained variant's artifacts, e.g. 'N100-100-10-dcn-l0.003-s1'."""
    return f"{model}-{variant}" + (f"-l{lam:g}" if lam is not None else "") + f"-s{seed}"


def _per_epoch(info):
    hist = info.get("history") or []
    return statistics.mean(h["seconds"] for h in hist) if hist else None


# ---- the stages ----------------------------------------------------------------------------------
def table1(run):
    rows = [run.evaluate(m) for m in run.models]
    write_json(os.path.join(run.dir, "table1.json"), rows)
    return rows


def table5(run):
    rows = []
    for m in run.models:
        seeds = run.cfg["seeds"] if m.startswith("N") else (0,)
        lam = run.choose_lambda(m, "dcn", run.cfg["dcn_grid"], paper.TABLE5[m]["dcn_error"] / 100)
        for seed in seeds:
            rows.append(run.evaluate(m, "orig", seed))
            rows.append(run.evaluate(m, "dcn", seed, lam))
    write_json(os.path.join(run.dir, "table5.json"), rows)
    return rows


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


STAGE_FUNCTIONS = {"table1": table1, "table5": table5, "table6": table6}


def reproduce(results_dir, stages=STAGES, mode="full", data_dir=None, progress=True, models=None):
    """Run the stages (resuming from whatever ``results_dir`` holds), then write REPRODUCTION.md.

    models: restrict tables 1 and 5 to these models (all four by default).
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
    run.log(f"wrote {path}")
    return results
