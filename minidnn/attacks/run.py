"""Attacking a whole dataset: chunks saved as they finish, so an interrupted run resumes."""
import os

import numpy

from .batched import batched_lbfgs_attack
from .reference import lbfgsb_attack
from .result import AttackResult

METHODS = {"batched": batched_lbfgs_attack, "reference": lbfgsb_attack}


def attack_dataset(net, x, labels, targets, c, method="batched", chunk=1000, partial_dir=None,
                   progress=True, **options):
    """Attack every example in chunks of ``chunk``; with ``partial_dir`` each finished chunk is
    written there atomically and reused on the next run with the same settings.

    Returns one AttackResult over all examples (meta from the settings + total seconds).
    """
    if method not in METHODS:
        raise ValueError(f"unknown attack method {method!r}; choose one of {sorted(METHODS)}")
    attack = METHODS[method]
    settings = {"c": float(c), "method": method, **{k: v for k, v in options.items() if k != "batch_size"}}
    parts, seconds = [], 0.0
    for i, start in enumerate(range(0, len(labels), chunk)):
        rows = slice(start, start + chunk)
        path = os.path.join(partial_dir, f"chunk-{i:05d}.npz") if partial_dir else None
        part = _reuse(path, settings, len(labels[rows]))
        if part is None:
            part = attack(net, x[rows], labels[rows], targets[rows], c, progress=progress, **options)
            part.meta.update(settings)
            if path:
                part.save(path)
        seconds += part.meta.get("seconds", 0.0)
        parts.append(part)
        if progress:
            done = min(start + chunk, len(labels))
            print(f"attacked {done}/{len(labels)}: error so far "
                  f"{100 * numpy.mean(numpy.concatenate([p.success for p in parts])):.2f}%", flush=True)
    result = AttackResult.concatenate(parts, meta={**parts[0].meta, "seconds": seconds, "n": len(labels)})
    result.meta.pop("messages", None)
    return result


def _reuse(path, settings, n):
    """A saved chunk made with the same settings and size, else None."""
    if not path or not os.path.exists(path):
        return None
    try:
        part = AttackResult.load(path)
    except Exception:
        return None                       # unreadable (e.g. killed mid-write elsewhere): redo it
    same = all(part.meta.get(k) == v for k, v in settings.items()) and len(part) == n
    return part if same else None
