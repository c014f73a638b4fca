"""AE400-10's training (experiments/baselines.py): resuming a started run skips the pretraining its
checkpoint replaces; a pretraining made on another split is not reused."""
import os

import numpy
import pytest

from minidnn.checkpoint import CheckpointError
from minidnn.experiments import baselines
from minidnn.experiments.baselines import Recipe, train_model


def tiny_splits():
    """64 training and 32 validation MNIST-shaped images with labels, seeded."""
    rng = numpy.random.default_rng(0)
    data = {f"x_{s}": rng.random((n, 784)).astype(numpy.float32) for s, n in (("train", 64), ("val", 32))}
    data.update({f"y_{s}": rng.integers(0, 10, n) for s, n in (("train", 64), ("val", 32))})
    return data


def test_a_started_autoencoder_classifier_is_not_pretrained_again(tmp_path, monkeypatch):
    """AE400-10 resumed from its checkpoint: the pretraining, whose weights the checkpoint replaces, is skipped."""
    data = tiny_splits()
    recipe = Recipe(lr=0.1, epochs=1, pretrain_epochs=1)
    out = str(tmp_path / "ae.npz")
    _, first = train_model("AE400-10", recipe, data=data, out=out, progress=False)
    monkeypatch.setattr(baselines, "pretrain_encoder", lambda *a: pytest.fail("pretrained again"))
    _, again = train_model("AE400-10", Recipe(lr=0.1, epochs=2, pretrain_epochs=1), data=data, out=out,
                           progress=False)
    assert again["pretrain_history"] == first["pretrain_history"] and len(again["history"]) == 2


def test_a_pretraining_on_another_split_is_not_reused(tmp_path):
    """Killed after AE400-10's pretraining: started again on another split, its pretraining is refused."""
    data = tiny_splits()
    out = str(tmp_path / "ae.npz")
    train_model("AE400-10", Recipe(lr=0.1, epochs=1, pretrain_epochs=1), data=data, out=out, progress=False)
    os.remove(out)                                          # as if killed before the first fine-tuning epoch
    with pytest.raises(CheckpointError, match="split_seed"):
        train_model("AE400-10", Recipe(lr=0.1, epochs=1, pretrain_epochs=1), data=data, out=out, progress=False,
                    info_extra={"split_seed": 3})
