"""REPRODUCTION.md: every table with our number beside the paper's and the difference."""
import datetime
import os
import statistics

from .. import backend
from ..checkpoint import atomic_write
from . import paper
from .adversarial import read_json


def _pct(v):
    return "–" if v is None else f"{100 * v:.2f}"


def _num(v, fmt="{:.3f}"):
    return "–" if v is None else fmt.format(v)


def _diff(ours, theirs, fmt="{:+.2f}"):
    return "–" if ours is None or theirs is None else fmt.format(ours - theirs)


def _mean_sd(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def table1_md(rows):
    out = ["## Table 1: the baseline models", "",
           "| model | test err % (ours / paper / diff) | adv. err % (ours / paper) | mean distortion (ours / paper / ratio) | c | epochs | s/epoch |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        p = paper.TABLE1[r["model"]]
        ours_e = 100 * r["test_error"]
        ratio = r["mean_distortion"] / p["distortion"] if r.get("mean_distortion") else None
        out.append(f"| {r['model']} | {ours_e:.2f} / {p['test_error']:.2f} / {ours_e - p['test_error']:+.2f} | "
                   f"{_pct(r.get('error_rate'))} / {p['adv_error']:.1f} | {_num(r.get('mean_distortion'))} / "
                   f"{p['distortion']:.3f} / {_num(ratio, '{:.2f}')} | {_num(r.get('c'), '{:.3g}')} | {r['epochs']} | "
                   f"{_num(r['seconds_per_epoch'], '{:.1f}')} |")
    return out


def table5_md(rows):
    out = ["## Table 5: Deep Contractive Network vs original", "",
           "Mean ± standard deviation over seeds where more than one seed was run.", "",
           "| model | λ | DCN test err % (ours / paper) | DCN distortion (ours / paper) | orig test err % (ours / paper) | orig distortion (ours / paper) | distortion gain (ours / paper) | DCN adv. err % | seeds |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for m in paper.MODELS:
        dcn = [r for r in rows if r["model"] == m and r["variant"] == "dcn"]
        orig = [r for r in rows if r["model"] == m and r["variant"] == "orig"]
        if not dcn or not orig:
            continue
        p = paper.TABLE5[m]
        de, de_sd = _mean_sd([100 * r["test_error"] for r in dcn])
        dd, dd_sd = _mean_sd([r.get("mean_distortion") for r in dcn])
        oe, oe_sd = _mean_sd([100 * r["test_error"] for r in orig])
        od, od_sd = _mean_sd([r.get("mean_distortion") for r in orig])
        gain = (dd / od - 1) if dd and od else None
        paper_gain = p["dcn_distortion"] / p["orig_distortion"] - 1
        adv, _ = _mean_sd([r.get("error_rate") for r in dcn])
        out.append(f"| {m} | {dcn[0]['lam']:g} | {de:.2f} ± {de_sd:.2f} / {p['dcn_error']} | {_num(dd)} ± {_num(dd_sd)} / "
                   f"{p['dcn_distortion']} | {oe:.2f} ± {oe_sd:.2f} / {p['orig_error']} | {_num(od)} ± {_num(od_sd)} / "
                   f"{p['orig_distortion']} | {_num(gain, '{:+.0%}')} / {paper_gain:+.0%} | {_pct(adv)} | {len(dcn)} |")
    return out


def table6_md(rows):
    names = {"dcn": "DCN", "gn-l1": "GN, L1, σ = 0.1", "gn-lstar": "GN, L*, σ = 0.1",
             "dcn+gn-l1": "DCN + GN, L1, σ = 0.1", "global": "global penalty (Eq. 5)"}
    out = ["## Table 6: N200-200-10 under different training conditions (and the global penalty)", "",
           "| model | training | λ | test err % (ours / paper) | mean distortion (ours / paper) | adv. err % | c | s/epoch | mean ‖∂y/∂x‖_F softmax / logits (orig model) |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        p = paper.TABLE6.get(r["variant"], {}) if r["model"] == "N200-200-10" else {}
        jac = ""
        if "jacobian" in r:
            j, jo = r["jacobian"], r["jacobian_orig"]
            jac = f"{j['softmax']:.3f} / {j['logits']:.2f} ({jo['softmax']:.3f} / {jo['logits']:.2f})"
        out.append(f"| {r['model']} | {names[r['variant']]} | {_num(r['lam'], '{:g}')} | {100 * r['test_error']:.2f} / "
                   f"{_num(p.get('test_error'), '{}')} | {_num(r.get('mean_distortion'))} / {_num(p.get('distortion'))} | "
                   f"{_pct(r.get('error_rate'))} | {_num(r.get('c'), '{:.3g}')} | {_num(r['seconds_per_epoch'], '{:.1f}')} | {jac} |")
    return out


def write_report(run):
    lines = [f"# Reproduction of Gu & Rigazio (2014): {run.mode} mode", "",
             f"- mode: **{run.mode}**" + (" (reduced data and epochs: shows the pipeline, not the paper's numbers)"
                                          if run.mode == "quick" else ""),
             f"- seeds: {list(run.cfg['seeds'])}; data: MNIST, 55,000 train / 5,000 validation (seeded split) / 10,000 test"
             + (f", each split cut to its first {run.cfg['limit']} images" if run.cfg["limit"] else ""),
             f"- backend: {backend.backend_name()} ({backend.float_dtype()}); written {datetime.date.today()}",
             f"- attack: batched L-BFGS (agrees with scipy's L-BFGS-B, see bench/RESULTS.md), random wrong target, "
             f"c searched on {run.cfg['search_n']} validation images for ≥ 99.5% error, then "
             + (f"the first {run.cfg['eval_n']} test images" if run.cfg["eval_n"] else "the whole test set"), ""]
    for stage, render in (("table1", table1_md), ("table5", table5_md), ("table6", table6_md)):
        rows = read_json(os.path.join(run.dir, f"{stage}.json"))
        if rows:
            lines += render(rows) + [""]
    for name in ("dcn", "global"):
        for m in paper.MODELS:
            sweep = read_json(os.path.join(run.dir, f"lambda-{m}-{name}.json"))
            if sweep:
                cells = ", ".join(f"λ={s['lam']:g}: {100 * s['val_error']:.2f}%" for s in sweep["sweep"])
                lines.append(f"- λ for {m} ({name}): {sweep['chosen']:g}, the {sweep['rule']} "
                             f"({100 * sweep['limit_error']:.1f}%); validation errors {cells}")
    if run.timings:
        lines += ["", "## Time per stage", "", "| stage | seconds |", "| --- | --- |"]
        lines += [f"| {k} | {v:.0f} |" for k, v in run.timings.items()]
    path = os.path.join(run.dir, "REPRODUCTION.md")
    text = "\n".join(lines) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))
    return path
