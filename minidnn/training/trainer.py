"""Mini-batch training with validation, early stopping, JSON-lines logs and exact resumption.

One epoch: shuffle the training indices with the trainer's seeded Generator, then for
each batch of ``batch_size`` run forward, loss, backward (plus any penalty terms) and
``optimizer.step()``. After the epoch: evaluate on the validation split, keep the best
weights, log, checkpoint (atomically). A run killed mid-way and started again with the
same arguments resumes from the last checkpoint and ends with exactly the weights an
uninterrupted run gives (NumPy backend): the checkpoint holds weights, best weights,
optimizer slots, the shuffling Generator's and the noise layers' states, and history.
"""
import json
import math
import os
import time

import numpy

from .. import backend
from ..checkpoint import CheckpointError, load_model, save_model
from ..files import atomic_write
from ..losses import SoftmaxCrossEntropy
from .optim import l2_penalty
from .progress import progress_bar


def classification_error(net, x, labels, batch_size=1000):
    """Share of examples whose predicted class differs from the label."""
    wrong = 0
    for i in range(0, x.shape[0], batch_size):
        wrong += int((net.predict(x[i:i + batch_size]) != labels[i:i + batch_size]).sum())
    return wrong / max(1, x.shape[0])


def mean_loss(net, x, targets, loss, batch_size=1000):
    """Average of ``loss`` over a dataset, in evaluation mode (no noise)."""
    total = 0.0
    for i in range(0, x.shape[0], batch_size):
        h = net.forward(x[i:i + batch_size], end=net.fused_end(loss))
        n = h.shape[0]
        total += float(loss.forward(h, targets[i:i + batch_size])) * (n if loss.reduction == "mean" else 1)
    return total / max(1, x.shape[0])


HOST_READ_EVERY = 20      # batches between the host's reads of the running loss (train_epoch)
LATER_SETTINGS = ("n_train", "n_val", "split_seed")     # recorded since later versions (see resume)
LATER_RECIPE_FIELDS = {"shift": 0}     # recipe fields added later: a record omits them at these values
RESUMABLE_RECIPE_FIELDS = ("epochs", "patience")     # a resumed run may train longer or stop otherwise
PENALTY_METADATA = ("variant", "lam", "contractive", "global_contractive", "global_output", "train_noise",
                    "noise_at")     # what the callers record about penalties and noise (older files: no settings)


def _penalty_record(metadata):
    """The penalty and noise options a run's metadata records, unset ones and the plain variant left out."""
    return {k: metadata[k] for k in PENALTY_METADATA
            if metadata.get(k) is not None and not (k == "variant" and metadata[k] == "orig")}


def without_later_defaults(recipe):
    """A recipe record without the fields added later when they hold their defaults, so that records
    written before those fields existed still match."""
    return {k: v for k, v in recipe.items() if not (k in LATER_RECIPE_FIELDS and v == LATER_RECIPE_FIELDS[k])}


def comparable_recipe(recipe):
    """A recipe record as resuming compares it: also without what may change between the runs."""
    if not recipe:
        return None
    return {k: v for k, v in without_later_defaults(recipe).items() if k not in RESUMABLE_RECIPE_FIELDS}


def training_state(meta, path):
    """The trainer's state in a checkpoint's metadata; a CheckpointError naming ``path`` for a file
    that holds a model alone."""
    training = meta.get("training")
    if training is None:
        raise CheckpointError(f"{path!r} holds a model but not a training run's state (saved with save_model, "
                              "not by the trainer): choose another output path to train from scratch")
    return training


class Trainer:
    """Trains ``net`` with ``optimizer`` on ``loss``; see the module docstring.

    penalties: callables ``penalty(net) -> (value, injections)`` evaluated on each
    batch's forward pass (see ``Sequential.loss_and_backward``), e.g. the contractive
    penalty of Eq. 6 (``minidnn.penalties``).
    metric: 'error' (classification, labels as targets) or 'loss' (e.g. autoencoders).
    augment: ``augment(batch, rng) -> batch`` applied to each training batch, with the
    trainer's Generator (e.g. ``RandomShift``); validation data is never augmented.
    """

    def __init__(self, net, optimizer, loss=None, batch_size=128, seed=0, schedule=None,
                 patience=None, penalties=(), metric="error", checkpoint=None, log=None,
                 progress=True, checkpoint_metadata=None, augment=None, settings_extra=None):
        self.net, self.optimizer, self.loss = net, optimizer, loss or SoftmaxCrossEntropy()
        self.batch_size, self.seed, self.schedule = int(batch_size), seed, schedule
        self.patience, self.penalties, self.metric = patience, list(penalties), metric
        self.checkpoint, self.log, self.progress = checkpoint, log, progress
        self.checkpoint_metadata = checkpoint_metadata or {}
        self.augment = augment
        self.settings_extra = dict(settings_extra or {})    # more that a resumed run must share (e.g. split_seed)
        self.rng = numpy.random.default_rng(seed)
        self.base_lr = optimizer.lr
        self.history, self.epoch = [], 0
        self.best = {"metric": math.inf, "epoch": -1, "params": None}
        self.data_size = {}           # set by fit: a resumed run must train on as many examples

    # ---- one epoch --------------------------------------------------------------------------
    def train_epoch(self, x, targets):
        """One pass over (x, targets) in a fresh shuffled order; returns the epoch's mean loss
        (and error). Each batch's loss and error count stay on the device; the host reads them every
        ``HOST_READ_EVERY`` batches and at the end (one synchronisation each on CuPy, not two per
        batch), checks that every loss is finite, and sums them in batch order. A non-finite loss
        stops the epoch when it is read, up to 19 steps after its batch: the weights are then not
        usable, and the checkpoint (written after each finished epoch) is what to resume from."""
        xp = backend.get_array_module(x)
        n = x.shape[0]
        n_batches = math.ceil(n / self.batch_size)
        order = xp.asarray(self.rng.permutation(n))
        bar = progress_bar(n_batches, f"epoch {self.epoch + 1}", self.progress)
        batch_loss = xp.zeros(n_batches, dtype=numpy.float64)     # float64 holds a float32 loss exactly
        batch_wrong = xp.zeros(n_batches, dtype=numpy.int64)
        totals = {"loss": 0.0, "wrong": 0, "seen": 0, "read": 0}
        for b in range(n_batches):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            xb, tb = x[idx], targets[idx]
            if self.augment is not None:
                xb = self.augment(xb, self.rng)
            self.optimizer.zero_grad()
            value, out, _ = self.net.loss_and_backward(xb, tb, self.loss, train=True, penalties=self.penalties,
                                                       need_input_grad=False)
            self.optimizer.step()
            batch_loss[b] = value
            if self.metric == "error":
                batch_wrong[b] = (out.argmax(axis=1) != tb).sum()
            bar.update()
            if (b + 1) % HOST_READ_EVERY == 0 or b + 1 == n_batches:
                self._read_batches(batch_loss, batch_wrong, b + 1, n, totals)
                post = {"loss": f"{totals['loss'] / totals['seen']:.4f}"}
                if self.metric == "error":
                    post["acc"] = f"{1 - totals['wrong'] / totals['seen']:.4f}"
                bar.set_postfix(**post)
        bar.close()
        result = {"train_loss": totals["loss"] / n}
        if self.metric == "error":
            result["train_error"] = totals["wrong"] / n
        return result

    def _read_batches(self, batch_loss, batch_wrong, upto, n, totals):
        """Bring batches totals['read']..upto−1 to the host: stop at a non-finite loss (naming its
        batch), else add them to the running totals in batch order."""
        first = totals["read"]
        losses = backend.to_numpy(batch_loss[first:upto]).tolist()
        wrongs = backend.to_numpy(batch_wrong[first:upto]).tolist() if self.metric == "error" else [0] * len(losses)
        for j, (value, wrong) in enumerate(zip(losses, wrongs)):
            b = first + j
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"training loss became {value} at epoch {self.epoch + 1}, batch {b} "
                    f"(learning rate {self.optimizer.lr}): lower the learning rate or check the data for NaNs. "
                    f"The network's weights are not usable now (the steps up to batch {upto - 1} ran before the "
                    f"loss was read); a checkpoint holds the last finished epoch")
            m = min(self.batch_size, n - b * self.batch_size)
            totals["loss"] += value * m
            totals["wrong"] += wrong
            totals["seen"] += m
        totals["read"] = upto

    def evaluate(self, x, targets):
        if self.metric == "error":
            return classification_error(self.net, x, targets)
        return mean_loss(self.net, x, targets, self.loss)

    # ---- the loop ----------------------------------------------------------------------------
    def fit(self, x, targets, epochs, x_val=None, t_val=None):
        """Train until ``epochs`` epochs are done (or early stopping), then restore the best weights.

        x: (N, ...) inputs on the current backend; targets: (N,) labels or (N, ...) for 'loss'.
        Returns the history: one dict per epoch.
        """
        if x.shape[0] != targets.shape[0]:
            raise ValueError(f"{x.shape[0]} inputs but {targets.shape[0]} targets")
        if x.shape[0] == 0:
            raise ValueError("no training examples (x has 0 rows)")
        if x_val is not None and x_val.shape[0] == 0:
            raise ValueError("an empty validation set (x_val has 0 rows): pass None to train without one")
        self.data_size = {"n_train": int(x.shape[0]), "n_val": int(x_val.shape[0]) if x_val is not None else 0}
        if self.checkpoint and os.path.exists(self.checkpoint):
            self.resume(self.checkpoint)
        while self.epoch < epochs and not self._stopped():
            if self.schedule is not None:
                self.optimizer.lr = self.base_lr * self.schedule(self.epoch)
            t0 = time.perf_counter()
            record = {"epoch": self.epoch + 1, "lr": self.optimizer.lr, **self.train_epoch(x, targets)}
            decay = l2_penalty(self.optimizer.params, self.optimizer.weight_decay)
            record["weight_decay_term"] = decay
            record["seconds"] = time.perf_counter() - t0
            if x_val is not None:
                val = self.evaluate(x_val, t_val)
                record[f"val_{self.metric}"] = val
                if val < self.best["metric"]:
                    self.best = {"metric": val, "epoch": self.epoch + 1,
                                 "params": {k: p.data.copy() for k, p in self.net.named_params().items()}}
            self.epoch += 1
            self.history.append(record)
            if self.checkpoint:
                self.save(self.checkpoint)
            self._write_log()
            if self.progress:
                shown = {k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in record.items()}
                print(" ".join(f"{k}={v}" for k, v in shown.items()), flush=True)
        if self.best["params"] is not None:
            for k, p in self.net.named_params().items():
                p.data = self.best["params"][k].copy()
        return self.history

    def _stopped(self):
        """Early stopping: no validation improvement for ``patience`` epochs."""
        return (self.patience is not None and self.best["epoch"] > 0
                and self.epoch - self.best["epoch"] >= self.patience)

    def _write_log(self):
        if self.log:
            text = "".join(json.dumps(r) + "\n" for r in self.history)
            atomic_write(self.log, lambda f: f.write(text.encode()))

    # ---- checkpoints -------------------------------------------------------------------------
    def save(self, path):
        arrays = {f"optim/{k}": v for k, v in self.optimizer.state_arrays().items()}
        if self.best["params"] is not None:
            arrays.update({f"best/{k}": v for k, v in self.best["params"].items()})
        training = {"epoch": self.epoch, "history": self.history, "seed": self.seed,
                    "rng": self.rng.bit_generator.state, "optimizer": self.optimizer.scalars(),
                    "optimizer_config": self.optimizer.config(), "base_lr": self.base_lr,
                    "best_metric": self.best["metric"] if math.isfinite(self.best["metric"]) else None,
                    "best_epoch": self.best["epoch"], "metric": self.metric, "settings": self.settings()}
        save_model(path, self.net, metadata=self.checkpoint_metadata, extra_arrays=arrays,
                   extra_meta={"training": training})

    def settings(self):
        """What a resumed run must share with the run that wrote the checkpoint (epochs may grow)."""
        opt = {k: v for k, v in self.optimizer.config().items() if k != "lr"}
        return {"optimizer": opt, "base_lr": self.base_lr, "weight_decay": self.optimizer.weight_decay,
                "batch_size": self.batch_size, "seed": self.seed, "metric": self.metric,
                "loss": type(self.loss).__name__, "loss_reduction": self.loss.reduction,
                "penalties": [getattr(p, "config", lambda p=p: type(p).__name__)() for p in self.penalties],
                **({"augment": getattr(self.augment, "config", lambda: type(self.augment).__name__)()}
                   if self.augment is not None else {}), **self.data_size, **self.settings_extra}

    def _compared_settings(self, training, metadata):
        """(saved, now): what the checkpoint's run and this one must share to resume.

        Files from before ``settings`` were saved are compared on what they hold: the optimizer, base
        lr, seed, metric and the penalty and noise options their metadata records. Settings added
        later are not held against files without them, nor the data size before fit() has seen the
        data. The recipe (less epochs and patience) and the split seed are compared where both runs
        have them; a file without a split seed was split by its seed."""
        saved, now = training.get("settings"), json.loads(json.dumps(self.settings()))
        mine = json.loads(json.dumps(self.checkpoint_metadata))
        if saved is None:
            config = training.get("optimizer_config")
            older = {"optimizer": {k: v for k, v in config.items() if k != "lr"} if config else None,
                     "base_lr": training.get("base_lr"), "seed": training.get("seed"), "metric": training.get("metric")}
            saved = {k: v for k, v in older.items() if v is not None}
            now = {k: v for k, v in now.items() if k in saved or k in LATER_SETTINGS}
            saved["penalties"], now["penalties"] = _penalty_record(metadata), _penalty_record(mine)
        saved = dict(saved)
        split = metadata.get("split_seed", metadata.get("seed", training.get("seed")))   # the run's, else the trainer's
        if split is not None:
            saved.setdefault("split_seed", split)
        recipes = comparable_recipe(metadata.get("recipe")), comparable_recipe(mine.get("recipe"))
        if None not in recipes:
            saved["recipe"], now["recipe"] = recipes
        now = {k: v for k, v in now.items() if k in saved or k not in LATER_SETTINGS}
        saved = {k: v for k, v in saved.items() if k in now or k not in LATER_SETTINGS}
        return saved, now

    def resume(self, path):
        """Restore everything ``save`` wrote; the architecture and the settings must match."""
        _, meta, arrays = load_model(path, into=self.net, return_all=True)
        training = training_state(meta, path)
        saved, now = self._compared_settings(training, meta.get("metadata", {}))
        if saved != now:
            missing = "(not recorded)"
            diff = {k: (saved.get(k, missing), now.get(k, missing)) for k in set(saved) | set(now)
                    if saved.get(k, missing) != now.get(k, missing)}
            raise CheckpointError(f"checkpoint {path!r} was written by a run with other settings "
                                  f"(saved vs now: {diff}); resume with the same settings, or choose another "
                                  "output path")
        if not self.data_size:         # resume() before fit(): a later save keeps the size it trained on
            self.data_size = {k: v for k, v in (training.get("settings") or {}).items() if k in ("n_train", "n_val")}
        self.optimizer.load_state_arrays({k[6:]: v for k, v in arrays.items() if k.startswith("optim/")},
                                         training["optimizer"])
        self.rng.bit_generator.state = training["rng"]
        self.epoch, self.history, self.base_lr = training["epoch"], training["history"], training["base_lr"]
        best = {k[5:]: v for k, v in arrays.items() if k.startswith("best/")}
        if best:
            holder = {}
            for k, p in self.net.named_params().items():
                holder[k] = backend.get_array_module(p.data).asarray(best[k], dtype=p.data.dtype)
            self.best = {"metric": training["best_metric"], "epoch": training["best_epoch"], "params": holder}
        if self.progress:
            print(f"resumed from {path} after epoch {self.epoch}", flush=True)
