"""Training the paper's four baseline models (Table 1) with their recipes.

Data: the 60,000 MNIST training images split by a seeded permutation into 55,000 for
training and 5,000 for validation (epochs, learning rates, weight decay and early
stopping are chosen on these); the 10,000 test images are used once, for the reported
error.

Weight decay: the objective is  mean-batch loss + (λ/2) Σ‖W‖²  (gradient += λW), on
dense weights only (no biases, no convolution kernels, as the paper says). The paper's
λ = 1e-3 is the default; see docs/baselines.md for the validation runs that chose each recipe.

``shift`` (off in every recipe): each training batch's images moved by up to that many pixels
(``RandomShift``); for the classifier's training only, not AE400-10's autoencoder pretraining.

AE400-10: a 784-400-784 sigmoid autoencoder is first trained on the training images
with binary cross-entropy (``pretrain_epochs``), its encoder copied into the classifier's
first layer, and the whole 784-400-10 network fine-tuned with cross-entropy.
"""
import os
from dataclasses import asdict, dataclass, replace

from .. import backend
from ..checkpoint import load_model
from ..data import load_mnist, train_validation_split
from ..layers import Dense
from ..losses import BinaryCrossEntropy
from ..networks import autoencoder, build_model, input_layout
from ..training import RandomShift, Trainer, classification_error, make_optimizer, make_schedule
from ..training.trainer import training_state, without_later_defaults

N_VALIDATION = 5000


@dataclass(frozen=True)
class Recipe:
    optimizer: str = "momentum"
    lr: float = 0.05
    epochs: int = 30
    batch_size: int = 128
    weight_decay: float = 1e-3
    schedule: str = "cosine"
    patience: int = None
    pretrain_epochs: int = 0        # AE400-10 only: autoencoder pretraining
    pretrain_lr: float = 0.1
    shift: int = 0                  # random shifts of the training images by up to this many pixels (not in the paper)


def recipe_record(recipe):
    """The recipe as a dict for metadata and cache keys; fields added later are omitted at their
    defaults, so results saved before they existed still match."""
    return without_later_defaults(asdict(recipe))


# Chosen on the 5,000-image validation split (seed 0); evidence and test errors in docs/baselines.md.
RECIPES = {
    "N100-100-10": Recipe(weight_decay=3e-4),
    "N200-200-10": Recipe(lr=0.1, weight_decay=1e-5),
    "AE400-10": Recipe(lr=0.5, weight_decay=1e-4, pretrain_epochs=20),
    "ConvNet": Recipe(epochs=15),
}


def mnist_splits(layout, seed=0, data_dir=None, n_validation=N_VALIDATION, limit=None):
    """Train/validation/test arrays on the current backend.

    layout: 'flat' (N, 784) or 'image' (N, 1, 28, 28). ``limit`` keeps the first
    ``limit`` examples of each split (quick runs and tests). Returns a dict with
    x_train, y_train, x_val, y_val, x_test, y_test.
    """
    flat = layout == "flat"
    x, y = load_mnist("train", data_dir=data_dir, flat=flat, dtype=backend.float_dtype())
    x_test, y_test = load_mnist("test", data_dir=data_dir, flat=flat, dtype=backend.float_dtype())
    train_idx, val_idx = train_validation_split(len(x), n_validation, seed=seed)
    parts = {"x_train": x[train_idx], "y_train": y[train_idx], "x_val": x[val_idx], "y_val": y[val_idx],
             "x_test": x_test, "y_test": y_test}
    if limit:
        parts = {k: v[:limit] for k, v in parts.items()}
    return {k: backend.as_array(v) for k, v in parts.items()}


def train_model(name, recipe=None, seed=0, data=None, data_dir=None, out=None, log=None, progress=True,
                penalties=(), net=None, info_extra=None):
    """Train one of the paper's models; returns (net, info dict with history and errors).

    ``out``: checkpoint path, written after every epoch (and resumed from if present);
    the autoencoder pretraining of AE400-10 checkpoints to ``out`` + '.pretrain.npz'.
    """
    recipe = recipe or RECIPES[name]
    net = net or build_model(name, rng=seed)
    data = data or mnist_splits(input_layout(net), seed=seed, data_dir=data_dir)
    split_seed = (info_extra or {}).get("split_seed", seed)     # the data's train/validation split
    info = {"model": name, "seed": seed, "recipe": recipe_record(recipe), "backend": backend.backend_name(),
            "dtype": str(backend.float_dtype()), **(info_extra or {})}
    if recipe.pretrain_epochs:
        started = _started_run(out)                 # its weights replace the encoder's anyway: no pretraining
        info["pretrain_history"] = (started.get("pretrain_history", []) if started is not None
                                    else pretrain_encoder(net, data, recipe, seed, out, progress, split_seed))
    optimizer = make_optimizer(recipe.optimizer, net.named_params(), lr=recipe.lr,
                               weight_decay=recipe.weight_decay)
    trainer = Trainer(net, optimizer, batch_size=recipe.batch_size, seed=seed,
                      schedule=make_schedule(recipe.schedule, recipe.epochs), patience=recipe.patience,
                      penalties=penalties, checkpoint=out, log=log, progress=progress,
                      checkpoint_metadata=info, augment=RandomShift(recipe.shift) if recipe.shift else None,
                      settings_extra={"split_seed": split_seed})
    info["history"] = trainer.fit(data["x_train"], data["y_train"], recipe.epochs, data["x_val"], data["y_val"])
    info["best_epoch"] = trainer.best["epoch"]
    info["val_error"] = trainer.best["metric"]
    info["train_error"] = classification_error(net, data["x_train"], data["y_train"])
    if out:   # the final file holds the best weights and everything known about them
        trainer.checkpoint_metadata = info
        trainer.save(out)
    return net, info


def _started_run(out):
    """The metadata of the checkpoint at ``out`` if it has trained at least one epoch, else None."""
    if not out or not os.path.exists(out):
        return None
    _, meta, _ = load_model(out, return_all=True)   # an unreadable file: its error now, not after pretraining
    return meta.get("metadata", {}) if training_state(meta, out).get("epoch", 0) >= 1 else None


def pretrain_encoder(net, data, recipe, seed, out, progress, split_seed=None):
    """Train a 784-400-784 sigmoid autoencoder on the images, then copy its encoder into ``net``."""
    split_seed = seed if split_seed is None else split_seed
    encoder_layer = next(layer for layer in net.layers if isinstance(layer, Dense))
    ae = autoencoder(encoder_layer.in_features, encoder_layer.out_features, rng=seed + 1)
    optimizer = make_optimizer(recipe.optimizer, ae.named_params(), lr=recipe.pretrain_lr,
                               weight_decay=recipe.weight_decay)
    trainer = Trainer(ae, optimizer, loss=BinaryCrossEntropy(), batch_size=recipe.batch_size, seed=seed,
                      schedule=make_schedule(recipe.schedule, recipe.pretrain_epochs), metric="loss",
                      checkpoint=(out + ".pretrain.npz") if out else None, progress=progress,
                      settings_extra={"split_seed": split_seed},
                      checkpoint_metadata={"seed": seed, "split_seed": split_seed})
    history = trainer.fit(data["x_train"], data["x_train"], recipe.pretrain_epochs,
                          data["x_val"], data["x_val"])
    for key in ("W", "b"):
        encoder_layer.params[key].data = ae.layers[0].params[key].data.copy()
    return history


def test_error(net, data):
    return classification_error(net, data["x_test"], data["y_test"])


def with_overrides(recipe, **overrides):
    """The recipe with any non-None overrides applied (CLI flags)."""
    return replace(recipe, **{k: v for k, v in overrides.items() if v is not None})
