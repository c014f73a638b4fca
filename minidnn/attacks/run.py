"""Attacking a whole dataset: chunks saved as they finish, so an interrupted run resumes."""
import hashlib
import json
import os

import numpy

from .. import backend
from .batched import DEFAULT_ALGORITHM, batched_lbfgs_attack
from .reference import lbfgsb_attack
from .result import AttackResult

METHODS = {"batched": batched_lbfgs_attack, "reference": lbfgsb_attack}
# Settings that older saved results lack, with the value they were made with: before the batched
# attack had a choice of algorithm, it was the projected L-BFGS.
LEGACY_SETTINGS = {"algorithm": "projected"}


def attack_dataset(net, x, labels, targets, c, method="batched", chunk=1000, partial_dir=None,
                   progress=True, **options):
    """Attack every example in chunks of ``chunk``; with ``partial_dir`` each finished chunk is
    written there atomically and reused on the next run with the same settings, network weights
    and examples.

    Returns one AttackResult over all examples (meta from the settings + total seconds).
    """
    if method not in METHODS:
        raise ValueError(f"unknown attack method {method!r}; choose one of {sorted(METHODS)}")
    attack = METHODS[method]
    if method == "batched":
        options.setdefault("algorithm", DEFAULT_ALGORITHM)
    settings = {"c": float(c), "method": method, "weights_sha1": weights_fingerprint(net),
                **{k: v for k, v in options.items() if k not in ("batch_size", "workers")}}
    parts, seconds = [], 0.0
    for i, start in enumerate(range(0, len(labels), chunk)):
        rows = slice(start, start + chunk)
        path = os.path.join(partial_dir, f"chunk-{i:05d}.npz") if partial_dir else None
        part = _reuse(path, settings, x[rows], labels[rows], targets[rows])
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


def saved_setting(saved, key):
    """``saved[key]``, or for a batched result saved before ``key`` existed, the value it was made with."""
    if key in saved:
        return saved[key]
    return LEGACY_SETTINGS.get(key) if saved.get("method") == "batched" else None


def weights_fingerprint(net):
    """SHA-1 of the network's spec and parameters: chunks made against other weights are not reused."""
    digest = hashlib.sha1(json.dumps(net.spec(), sort_keys=True).encode())
    for name, p in net.named_params().items():
        digest.update(name.encode())
        digest.update(numpy.ascontiguousarray(backend.to_numpy(p.data)).tobytes())
    return digest.hexdigest()


def _reuse(path, settings, x, labels, targets):
    """A saved chunk made with the same settings on the same images, labels and targets, else None."""
    if not path or not os.path.exists(path):
        return None
    try:
        part = AttackResult.load(path)
    except Exception:
        return None                       # unreadable (e.g. killed mid-write elsewhere): redo it
    same = all(saved_setting(part.meta, k) == v for k, v in settings.items()) and len(part) == len(labels)
    # the same examples too (another subset or target rule saved under this path must not be reused)
    same = same and (numpy.array_equal(part.label, backend.to_numpy(labels))
                     and numpy.array_equal(part.target, backend.to_numpy(targets))
                     and numpy.array_equal(part.original, backend.to_numpy(x).astype(numpy.float32)))
    return part if same else None
