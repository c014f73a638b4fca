"""Recovering from adversarial examples (Section 3): the paper's Tables 2-4 and Figures 1-2.

Every function takes a reproduce ``Run`` (results directory, mode settings, cached data and
models) and writes its artifacts atomically there, reusing them when present:

- adversarials of each original model on (a seeded subset of) its training and validation
  images, at the model's protocol c (attacks/<model>-orig-s0/chunks-train, chunks-val);
- autoencoders 784-256-128-256-784: one per model trained to map those adversarials to their
  originals and the clean images to themselves (Table 3), and standard denoising autoencoders
  with Gaussian corruption σ (Table 4), in models/;
- new adversarials against each stacked network (autoencoder + model), with the protocol's own c.
"""
import json
import os

import numpy

from .. import backend
from ..attacks.result import AttackResult
from ..attacks.run import attack_dataset, weights_fingerprint
from ..attacks.targets import choose_targets
from ..checkpoint import CheckpointError, load_model
from ..data import subset
from ..layers.blur import default_sigma
from ..losses import BinaryCrossEntropy
from ..networks import (blurred, input_layout, noisy_predict_proba, recovery_autoencoder, stack, with_noise,
                        without_noise)
from ..training import Trainer, classification_error, make_optimizer, make_schedule
from .adversarial import ATTACK_ALGORITHM, protocol_eval
from .baselines import Recipe, recipe_record

# The autoencoders' recipe: the paper gives only its weight decay, λ = 1e-3 on every non-convolutional
# layer (gradient += λW on the weights, as for the classifiers). Adam with a cosine schedule, chosen
# for being robust without tuning; early stopping keeps the epoch with the lowest validation loss.
# Without the weight decay the autoencoders put large weights on the border pixels, which are zero
# in every clean image and so mark an adversarial; the stacked networks are then fooled through
# them (docs/reproduction-notes.md, results/ablation/).
AE_RECIPE = Recipe(optimizer="adam", lr=1e-3, epochs=20, batch_size=128, weight_decay=1e-3)


# ---- adversarial sets ------------------------------------------------------------------------
def adversarial_test_set(run, model):
    """The original model's adversarial test set from Table 1's protocol (AttackResult)."""
    run.evaluate(model)                                   # makes it if absent
    return AttackResult.load(os.path.join(run.dir, "attacks", f"{model}-orig-s0", "adv-test.npz"))


def split_adversarials(run, model, split):
    """Adversarials of the original model on a seeded subset of the 'train' or 'val' split, at the
    protocol's c, random wrong targets; chunks cached (resumable). Returns an AttackResult."""
    net, _ = run.model(model)
    c = run.evaluate(model)["c"]
    data = run.data(input_layout(net))
    x, y = data[f"x_{split}"], data[f"y_{split}"]
    rows = subset(len(y), min(_adv_count(run, model, split) or len(y), len(y)), seed=3)
    xs, ys = x[rows], y[rows]
    targets = choose_targets(net, xs, ys, "random", rng=numpy.random.default_rng(3))
    out = os.path.join(run.dir, "attacks", f"{model}-orig-s0", f"chunks-{split}")
    run.log(f"adversarials of {model} on {len(ys)} {split} images (c = {c:.3g})")
    return attack_dataset(net, xs, ys, targets, c, partial_dir=out, progress=run.progress, algorithm=ATTACK_ALGORITHM)


def _adv_count(run, model, split):
    """How many images of ``split`` are attacked for the autoencoders (None: all)."""
    if split == "val":
        return run.cfg["val_adv_n"]
    if model == "ConvNet" and run.cfg.get("train_adv_n_convnet"):
        return run.cfg["train_adv_n_convnet"]
    return run.cfg["train_adv_n"]


# ---- autoencoders ----------------------------------------------------------------------------
def train_autoencoder(run, name, make_pairs, key, corruption=None, seed=0):
    """Train (or load, or resume) a 784-256-128-256-784 autoencoder on pairs x_in → x_out with
    binary cross-entropy; ``corruption`` σ adds N(0, σ²) input noise in training (a denoising AE).

    make_pairs() -> (x_in, x_out, xv_in, xv_out): (N, 784) training and validation pairs, called
    only when the autoencoder has to be trained. key: what the pairs were made from (classifier
    weights, counts); a saved autoencoder, finished or not, is used only if its key and recipe
    match, otherwise it is trained again. Validation loss is measured without corruption: the
    epoch kept is the one that reconstructs clean validation images best. Returns the noiseless
    network.
    """
    path = os.path.join(run.dir, "models", name + ".npz")
    recipe = run.ae_recipe()
    key = {**key, "corruption": corruption, "seed": seed, "recipe": recipe_record(recipe)}
    if os.path.exists(path):
        try:
            net, meta, _ = load_model(path, return_all=True)
            saved = meta.get("metadata", {})
            if saved.get("key") != json.loads(json.dumps(key)):
                run.log(f"{path} was made from other data or settings: training it again")
                os.remove(path)
            elif saved.get("finished"):
                return without_noise(net)
        except CheckpointError as exc:            # never deleted here: it may be readable by another version
            raise CheckpointError(f"{exc}; move or delete {path} to train this autoencoder again") from exc
    x_in, x_out, xv_in, xv_out = make_pairs()
    net = recovery_autoencoder(rng=seed)
    if corruption:
        net = with_noise(net, corruption, "input", rng=seed + 2)
    info = {"autoencoder": name, "key": key, "n_pairs": int(len(x_in))}
    optimizer = make_optimizer(recipe.optimizer, net.named_params(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    trainer = Trainer(net, optimizer, loss=BinaryCrossEntropy(), batch_size=recipe.batch_size, seed=seed,
                      schedule=make_schedule(recipe.schedule, recipe.epochs), metric="loss", checkpoint=path,
                      progress=run.progress, checkpoint_metadata=info)
    run.log(f"training autoencoder {name} on {len(x_in)} pairs")
    info["history"] = trainer.fit(x_in, x_out, recipe.epochs, xv_in, xv_out)
    info.update(finished=True, val_loss=trainer.best["metric"], best_epoch=trainer.best["epoch"])
    trainer.checkpoint_metadata = info
    trainer.save(path)
    return without_noise(net)


def flat(a):
    """(N, ...) → (N, 784): the autoencoders take flat images whatever the model's layout."""
    return a.reshape(a.shape[0], -1)


def recovery_autoencoder_for(run, model):
    """Table 3's autoencoder for ``model``: its training adversarials → originals, clean → clean."""
    net, _ = run.model(model)

    def pairs():
        xp = backend.xp()
        tr, va = split_adversarials(run, model, "train"), split_adversarials(run, model, "val")
        clean = run.data("flat")
        return (xp.concatenate([xp.asarray(flat(tr.adversarial)), clean["x_train"]]),
                xp.concatenate([xp.asarray(flat(tr.original)), clean["x_train"]]),
                xp.concatenate([xp.asarray(flat(va.adversarial)), clean["x_val"]]),
                xp.concatenate([xp.asarray(flat(va.original)), clean["x_val"]]))

    key = {"classifier_sha1": weights_fingerprint(net), "c": run.evaluate(model)["c"],
           "n_train_adv": _adv_count(run, model, "train"), "n_val_adv": _adv_count(run, model, "val"),
           "limit": run.cfg["limit"]}
    return train_autoencoder(run, f"recovery-AE-{model}", pairs, key)


def denoising_autoencoder(run, sigma):
    """Table 4's standard DAE: clean images with N(0, σ²) corruption → clean, no adversarials."""
    def pairs():
        clean = run.data("flat")
        return clean["x_train"], clean["x_train"], clean["x_val"], clean["x_val"]
    return train_autoencoder(run, f"DAE-s{sigma:g}", pairs, {"limit": run.cfg["limit"]}, corruption=sigma)


def denoised_error(ae, net, adv):
    """Error of ``net`` on the autoencoder's reconstruction of the adversarial images (all of them)."""
    xp = backend.xp()
    rec = ae.predict_logits(xp.asarray(flat(adv.adversarial)))          # the sigmoid output: images
    rec = rec.reshape((len(adv),) + tuple(net.input_shape))
    return float((backend.to_numpy(net.predict(rec)) != adv.label).mean())


def stacked_attack(run, ae, ae_name, model):
    """The stacked network ae + model: clean test error and the protocol on it (its own c)."""
    net, _ = run.model(model)
    stacked = stack(ae, net, name=f"{ae_name}+{model}")
    data = run.data("flat")
    n = run.cfg["stacked_eval_n"]
    out_dir = os.path.join(run.dir, "attacks", f"{ae_name}+{model}")
    summary = protocol_eval(stacked, data, out_dir, seed=0, search_n=run.cfg["stacked_search_n"], eval_n=n,
                            progress=run.progress, algorithm=ATTACK_ALGORITHM)
    return {"clean_error": classification_error(stacked, data["x_test"], data["y_test"]),
            "ae_gain": autoencoder_gain(ae, AttackResult.load(os.path.join(out_dir, "adv-test.npz"))),
            "threshold_reached": summary.get("threshold_reached", True),
            **{k: summary[k] for k in ("c", "error_rate", "mean_distortion", "n")}}


def autoencoder_gain(ae, adv):
    """Mean over the successful adversarials of RMS(ae(x') − ae(x)) / RMS(x' − x): how much the
    autoencoder amplifies the perturbation that fools the stacked network (1 = passes it on as is)."""
    ok = adv.success & (adv.distortion > 0)
    if not ok.any():
        return float("nan")
    x, x_adv = backend.as_array(flat(adv.original[ok])), backend.as_array(flat(adv.adversarial[ok]))
    out = backend.to_numpy(ae.predict_logits(x_adv) - ae.predict_logits(x)).astype(numpy.float64)
    return float((numpy.sqrt((out ** 2).mean(axis=1)) / adv.distortion[ok]).mean())


def original_on_first(run, model, n):
    """Table 1's attack on ``model`` restricted to the first n test images (the ones the stacked
    networks are attacked on): (error rate, mean distortion over its successes)."""
    adv = adversarial_test_set(run, model)
    ok = adv.success[:n]
    return float(ok.mean()), float(adv.distortion[:n][ok].mean()) if ok.any() else float("nan")


# ---- the stages ----------------------------------------------------------------------------------
def table2(run):
    """Gaussian blur in front of each original model: clean and adversarial test error by kernel
    size (σ by the stated rule), and how they move with σ at sizes 5 and 11."""
    rows = []
    for m in run.models:
        net, _ = run.model(m)
        data = run.data(input_layout(net))
        adv = adversarial_test_set(run, m)
        x_adv = backend.as_array(adv.adversarial.reshape((len(adv),) + tuple(net.input_shape)))
        n = len(adv)
        for size, sigma in [(1, None), (5, None), (11, None)] + [(s, g) for s in (5, 11) for g in run.cfg["blur_sigmas"]]:
            b = blurred(net, size, sigma)
            rows.append({"model": m, "size": size, "sigma": default_sigma(size) if sigma is None else sigma,
                         "rule": sigma is None, "n_adv": n,
                         "clean_error": classification_error(b, data["x_test"], data["y_test"]),
                         "adv_error": float((backend.to_numpy(b.predict(x_adv)) != adv.label).mean())})
    return rows


def figure1(run):
    """Test-time noise injection (Section 3.1): clean and adversarial error against σ, at L1 and L*,
    softmax averaged over 20 seeded noisy passes."""
    rows = []
    for m in run.models:
        net, _ = run.model(m)
        data = run.data(input_layout(net))
        adv = adversarial_test_set(run, m)
        n = len(adv)
        if m == "ConvNet" and run.cfg.get("noise_n_convnet"):
            n = min(n, run.cfg["noise_n_convnet"])
        x_clean, y_clean = data["x_test"][:n], backend.to_numpy(data["y_test"][:n])
        x_adv = backend.as_array(adv.adversarial[:n].reshape((n,) + tuple(net.input_shape)))
        for where in ("input", "all"):
            for sigma in run.cfg["noise_sigmas"]:
                row = {"model": m, "where": where, "sigma": sigma, "n": n, "passes": run.cfg["noise_passes"]}
                for name, x, y in (("clean_error", x_clean, y_clean), ("adv_error", x_adv, adv.label[:n])):
                    p = noisy_predict_proba(net, x, sigma, where, passes=run.cfg["noise_passes"], rng=5)
                    row[name] = float((backend.to_numpy(p.argmax(axis=1)) != y).mean())
                rows.append(row)
        run.log(f"noise sweep {m}: done ({n} images)")
    return rows


def table3(run):
    """Autoencoders trained on each model's adversarials: the 4 × 4 cross-model table, the stacked
    networks' clean error, and new adversarials against them."""
    cells, stacked = [], []
    aes = {m: recovery_autoencoder_for(run, m) for m in run.models}
    advs = {m: adversarial_test_set(run, m) for m in run.models}          # loaded once: 10,000 images each
    for col, ae in aes.items():
        for row_model in run.models:
            net, _ = run.model(row_model)
            cells.append({"ae": col, "model": row_model, "error": denoised_error(ae, net, advs[row_model])})
        stacked.append({"ae": col, "model": col, **stacked_attack(run, ae, f"recovery-AE-{col}", col)})
    return {"cells": cells, "stacked": stacked}


def table4(run):
    """Standard denoising autoencoders (σ = 0.1, 0.5): error on each model's adversarial test set after
    denoising, the stacked networks' clean error, and adversarials against the stacks."""
    rows = []
    advs = {m: adversarial_test_set(run, m) for m in run.models}
    for sigma in run.cfg["dae_sigmas"]:
        dae = denoising_autoencoder(run, sigma)
        for m in run.models:
            net, _ = run.model(m)
            row = {"sigma": sigma, "model": m, "error": denoised_error(dae, net, advs[m])}
            if sigma in run.cfg["dae_attack_sigmas"]:
                row.update({"stacked_" + k: v for k, v in stacked_attack(run, dae, f"DAE-s{sigma:g}", m).items()})
            rows.append(row)
    return rows
