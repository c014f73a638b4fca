"""What an attack returns: every example's record, never a silent failure, savable without pickle."""
import json
from dataclasses import dataclass, field

import numpy

from .. import backend
from ..files import atomic_write

ARRAYS = ("original", "adversarial", "target", "label", "predicted", "success", "hit_target", "l2",
          "distortion", "iterations", "converged")


@dataclass
class AttackResult:
    """Per-example records (NumPy arrays on the host) of one attack run.

    original, adversarial: (N, ...) float32 images in [0, 1]
    target: (N,) the label aimed at (−1 for untargeted); label: true labels; predicted: f(x')
    success: predicted ≠ label; hit_target: predicted == target
    l2: ‖x' − x‖₂; distortion: sqrt(mean((x' − x)²)) (the paper's measure); iterations; converged
    meta: JSON-able settings (c, method, target rule, seed, model, messages, time...)
    """
    original: numpy.ndarray
    adversarial: numpy.ndarray
    target: numpy.ndarray
    label: numpy.ndarray
    predicted: numpy.ndarray
    iterations: numpy.ndarray
    converged: numpy.ndarray
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        diff = (self.adversarial.astype(numpy.float64) - self.original.astype(numpy.float64)).reshape(len(self.label), -1)
        self.l2 = numpy.sqrt((diff * diff).sum(axis=1))
        self.distortion = numpy.sqrt((diff * diff).mean(axis=1))      # RMS pixel change
        self.success = self.predicted != self.label
        self.hit_target = self.predicted == self.target

    def __len__(self):
        return len(self.label)

    @property
    def error_rate(self):
        """Share of all attacked examples whose prediction differs from the true label."""
        return float(self.success.mean()) if len(self) else 0.0

    @property
    def mean_distortion(self):
        """Mean RMS distortion over the successful adversarials (nan if none)."""
        return float(self.distortion[self.success].mean()) if self.success.any() else float("nan")

    def summary(self):
        return {"n": len(self), "error_rate": self.error_rate, "mean_distortion": self.mean_distortion,
                "target_hit_rate": float(self.hit_target.mean()) if len(self) else 0.0,
                "mean_iterations": float(self.iterations.mean()) if len(self) else 0.0}

    @classmethod
    def from_arrays(cls, original, adversarial, target, label, predicted, iterations, converged, meta=None):
        host = backend.to_numpy
        return cls(host(original).astype(numpy.float32), host(adversarial).astype(numpy.float32),
                   host(target).astype(numpy.int64), host(label).astype(numpy.int64),
                   host(predicted).astype(numpy.int64), host(iterations).astype(numpy.int64),
                   host(converged).astype(bool), dict(meta or {}))

    @classmethod
    def concatenate(cls, parts, meta=None):
        fields = ("original", "adversarial", "target", "label", "predicted", "iterations", "converged")
        return cls(*(numpy.concatenate([getattr(p, k) for p in parts]) for k in fields),
                   meta=dict(meta if meta is not None else parts[0].meta))

    # ---- files: .npz of arrays + JSON metadata, written atomically, read without pickle ----
    def save(self, path):
        payload = {k: getattr(self, k) for k in ARRAYS}
        payload["meta.json"] = numpy.frombuffer(json.dumps({**self.meta, **self.summary()}).encode(), numpy.uint8)
        atomic_write(path, lambda f: numpy.savez(f, **payload))

    @classmethod
    def load(cls, path):
        from ..checkpoint import CheckpointError
        try:
            with numpy.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            meta = json.loads(arrays.pop("meta.json").tobytes().decode())
            return cls(arrays["original"], arrays["adversarial"], arrays["target"], arrays["label"],
                       arrays["predicted"], arrays["iterations"], arrays["converged"], meta)
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise CheckpointError(f"adversarial set {path!r} is truncated or not an attack file "
                                  f"({type(exc).__name__}: {exc})") from exc
