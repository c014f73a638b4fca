"""Checkpoints: a whole model in one ``.npz`` file that loading can never execute code from.

Layout (NumPy's zip of ``.npy`` arrays, read with ``allow_pickle=False``):

    meta.json          uint8 bytes of a JSON document: format version, the network spec
                       (architecture), training metadata, optimizer scalars, RNG states
    param/<name>       the network's parameters, e.g. ``param/0.W``
    <group>/<key>      any other array groups the caller adds (optimizer slots, best weights)

Writes go to a temporary file in the same directory, are flushed to disk, then renamed
over the target (atomic on POSIX): a crash leaves the old file or the new one, never half.
"""
import json
import os
import zipfile

import numpy

from . import backend
from .files import atomic_write
from .networks import Sequential

FORMAT = "minidnn-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, truncated, or for another architecture."""


def save_arrays(path, arrays, meta):
    """Atomically write {name: array} and a JSON-able ``meta`` dict as one .npz file."""
    payload = {k: backend.to_numpy(v) for k, v in arrays.items()}
    payload["meta.json"] = numpy.frombuffer(json.dumps({"format": FORMAT, "version": VERSION, **meta}).encode(), numpy.uint8)
    atomic_write(path, lambda f: numpy.savez(f, **payload))


def load_arrays(path):
    """Read a file written by ``save_arrays``: returns (meta dict, {name: NumPy array})."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        what = "is a directory" if os.path.isdir(path) else "does not exist"
        raise CheckpointError(f"checkpoint {path!r} {what}")
    if not zipfile.is_zipfile(path):   # numpy.load would try other formats (.npy, pickle) on such a file
        raise CheckpointError(f"checkpoint {path!r} is truncated or not a checkpoint (not an .npz archive)")
    arrays = {}
    try:
        with numpy.load(path, allow_pickle=False) as data:
            for k in data.files:
                try:
                    arrays[k] = data[k]
                except ValueError as exc:    # e.g. an object array: only pickle could read it
                    raise CheckpointError(f"checkpoint {path!r}: entry {k!r} is unreadable ({exc}); checkpoints "
                                          "hold plain numeric arrays and are never unpickled") from exc
    except (zipfile.BadZipFile, EOFError, OSError, KeyError) as exc:
        raise CheckpointError(f"checkpoint {path!r} is truncated or corrupt ({type(exc).__name__}: {exc})") from exc
    if "meta.json" not in arrays:
        raise CheckpointError(f"{path!r} is not a minidnn checkpoint (no meta.json entry)")
    try:
        meta = json.loads(arrays.pop("meta.json").tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint {path!r} has a corrupt meta.json: {exc}") from exc
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise CheckpointError(f"{path!r}: unsupported checkpoint format {meta.get('format')!r} "
                              f"version {meta.get('version')!r} (expected {FORMAT} {VERSION})")
    return meta, arrays


def params_to_arrays(net, prefix="param/"):
    return {prefix + name: p.data for name, p in net.named_params().items()}


def load_params(net, arrays, path="<arrays>", prefix="param/"):
    """Copy ``prefix<name>`` arrays into ``net``'s parameters, checking names and shapes."""
    params = net.named_params()
    stored = {k[len(prefix):] for k in arrays if k.startswith(prefix)}
    missing, extra = sorted(set(params) - stored), sorted(stored - set(params))
    if missing or extra:
        raise CheckpointError(f"checkpoint {path!r} does not fit {net.describe()}: "
                              f"missing parameters {missing}, unexpected {extra}")
    for name, p in params.items():
        a = arrays[prefix + name]
        if tuple(a.shape) != tuple(p.data.shape):
            raise CheckpointError(f"checkpoint {path!r} does not fit {net.describe()}: parameter {name!r} "
                                  f"has shape {tuple(a.shape)}, the network expects {tuple(p.data.shape)}")
        xp = backend.get_array_module(p.data)
        p.data = xp.asarray(a, dtype=p.data.dtype).copy()
        p.grad = None


def save_model(path, net, metadata=None, extra_arrays=None, extra_meta=None):
    """Save architecture spec + weights (+ metadata, optimizer/RNG state from the caller)."""
    arrays = params_to_arrays(net)
    arrays.update(extra_arrays or {})
    meta = {"spec": net.spec(), "layer_states": net.layer_states(), "metadata": metadata or {}}
    meta.update(extra_meta or {})
    save_arrays(path, arrays, meta)


def load_model(path, into=None, return_all=False):
    """Rebuild the saved network (or load into ``into``, which must have the same architecture).

    Returns the network; with ``return_all=True`` also (meta, arrays) for resuming training.
    """
    meta, arrays = load_arrays(path)
    if "spec" not in meta:
        raise CheckpointError(f"{path!r} holds no network spec (not a model checkpoint)")
    if into is not None:
        if _architecture(into.spec()) != _architecture(meta["spec"]):
            raise CheckpointError(
                f"checkpoint {path!r} is for another architecture: it holds "
                f"{_summary(meta['spec'])}, the network given is {_summary(into.spec())}")
        net = into
    else:
        try:
            net = Sequential.from_spec(meta["spec"])
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {path!r} has an invalid network spec: {exc}") from exc
    load_params(net, arrays, path)
    net.load_layer_states(meta.get("layer_states", {}))
    return (net, meta, arrays) if return_all else net


def _architecture(spec):
    return {"input_shape": list(spec["input_shape"]), "layers": spec["layers"]}


def _summary(spec):
    """One line naming the layers, with the sizes of the weight layers: 'N [Dense(784,100) → ReLU → ...]'."""
    sizes = ("in_features", "out_features", "in_channels", "out_channels")

    def name(layer):
        dims = [str(layer[k]) for k in sizes if k in layer]
        return layer["type"] + (f"({','.join(dims)})" if dims else "")
    return f"{spec.get('name') or 'network'} [{' → '.join(map(name, spec['layers']))}] on input {tuple(spec['input_shape'])}"
