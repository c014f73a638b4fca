"""A killed run, started again with the same arguments, ends with exactly the uninterrupted run's weights."""
import json

import numpy
import pytest

from minidnn.checkpoint import CheckpointError, load_arrays, load_model, save_arrays
from minidnn.layers import Dense, GaussianNoise, ReLU, Tanh
from minidnn.networks import Sequential
from minidnn.training import Trainer, make_optimizer, make_schedule


def data(n=120, seed=0):
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal((n, 5)).astype(numpy.float32)
    return x, (x[:, 0] * x[:, 1] > 0).astype(numpy.int64) + (x[:, 2] > 1)


def plain_net():
    return Sequential([Dense(5, 8, rng=1), Tanh(), Dense(8, 3, rng=2)], (5,), "plain")


def noisy_net():
    return Sequential([GaussianNoise(0.3, rng=5), Dense(5, 8, rng=1), ReLU(), GaussianNoise(0.2, rng=6),
                       Dense(8, 3, rng=2)], (5,), "noisy")


CASES = {   # network, optimizer, weight decay, with validation (best weights) or not
    "momentum+decay+validation": (plain_net, "momentum", 1e-2, True),
    "nesterov+noise": (noisy_net, "nesterov", 0.0, False),
    "adam+noise+validation": (noisy_net, "adam", 1e-3, True),
}


def train(case, epochs, checkpoint, log=None):
    """A fresh network, optimizer and trainer, as a restarted process would build them."""
    make_net, optimizer, decay, validate = CASES[case]
    net = make_net()
    lr = 0.01 if optimizer == "adam" else 0.05
    opt = make_optimizer(optimizer, net.named_params(), lr=lr, weight_decay=decay)
    trainer = Trainer(net, opt, batch_size=16, seed=3, schedule=make_schedule("cosine", 4), checkpoint=str(checkpoint),
                      log=log and str(log), progress=False)
    x, y = data()
    x_val, y_val = data(40, seed=1)
    trainer.fit(x, y, epochs, *((x_val, y_val) if validate else ()))
    return net, trainer


def assert_same_arrays(a, b):
    assert sorted(a) == sorted(b)
    for k in a:
        assert numpy.array_equal(a[k], b[k]), f"{k} differs"


@pytest.mark.parametrize("case", list(CASES))
def test_resumed_run_equals_uninterrupted_run(case, tmp_path):
    whole, whole_trainer = train(case, 4, tmp_path / "whole.npz")
    train(case, 2, tmp_path / "resumed.npz")                             # "killed" after epoch 2
    resumed, resumed_trainer = train(case, 4, tmp_path / "resumed.npz", log=tmp_path / "resumed.log")

    assert_same_arrays({k: p.data for k, p in whole.named_params().items()},
                       {k: p.data for k, p in resumed.named_params().items()})
    assert_same_arrays(whole_trainer.optimizer.state_arrays(), resumed_trainer.optimizer.state_arrays())
    assert whole_trainer.optimizer.steps == resumed_trainer.optimizer.steps == 4 * 8
    _, _, saved_whole = load_model(tmp_path / "whole.npz", return_all=True)
    _, _, saved_resumed = load_model(tmp_path / "resumed.npz", return_all=True)
    assert_same_arrays(saved_whole, saved_resumed)                      # current and best weights, slots
    assert [json.loads(line)["epoch"] for line in (tmp_path / "resumed.log").read_text().splitlines()] == [1, 2, 3, 4]
    drop = {"seconds"}
    assert ([{k: v for k, v in r.items() if k not in drop} for r in whole_trainer.history]
            == [{k: v for k, v in r.items() if k not in drop} for r in resumed_trainer.history])


def test_the_noise_generators_state_matters(tmp_path, monkeypatch):
    """Negative control: a resume that forgot the noise layers' generators would end elsewhere."""
    whole, _ = train("nesterov+noise", 4, tmp_path / "whole.npz")
    train("nesterov+noise", 2, tmp_path / "resumed.npz")
    monkeypatch.setattr(GaussianNoise, "load_state", lambda self, state: None)
    resumed, _ = train("nesterov+noise", 4, tmp_path / "resumed.npz")
    assert not numpy.array_equal(whole.layers[1].params["W"].data, resumed.layers[1].params["W"].data)


def test_a_finished_run_is_not_trained_again(tmp_path):
    net, trainer = train("momentum+decay+validation", 2, tmp_path / "run.npz")
    again, again_trainer = train("momentum+decay+validation", 2, tmp_path / "run.npz")
    assert again_trainer.epoch == 2 and len(again_trainer.history) == 2
    assert_same_arrays({k: p.data for k, p in net.named_params().items()},
                       {k: p.data for k, p in again.named_params().items()})


def test_resume_with_other_settings_is_refused(tmp_path):
    """A checkpoint written with one learning rate is not silently continued with another."""
    import numpy
    import pytest
    from minidnn.layers import Dense
    from minidnn.networks import Sequential
    from minidnn.training import SGD, Trainer
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((64, 4)).astype(numpy.float32)
    y = (x[:, 0] > 0).astype(numpy.int64)
    path = str(tmp_path / "run.npz")

    def trainer(lr):
        net = Sequential([Dense(4, 2, rng=0)], (4,))
        return Trainer(net, SGD(net.named_params(), lr=lr), batch_size=16, checkpoint=path, progress=False)

    trainer(0.1).fit(x, y, 1)
    trainer(0.1).fit(x, y, 2)                      # same settings, more epochs: resumes
    with pytest.raises(CheckpointError, match="other settings.*base_lr"):
        trainer(0.5).fit(x, y, 3)


def momentum_trainer(path):
    net = plain_net()
    return Trainer(net, make_optimizer("momentum", net.named_params(), lr=0.05), batch_size=16,
                   checkpoint=str(path), progress=False)


def rewrite_as_older(path, *settings):
    """Rewrite the checkpoint at ``path`` as a version that did not record ``settings`` (names in
    training["settings"]; none given: no settings at all) wrote it."""
    meta, arrays = load_arrays(path)
    if settings:
        for key in settings:
            del meta["training"]["settings"][key]
    else:
        del meta["training"]["settings"]
    save_arrays(path, arrays, {k: v for k, v in meta.items() if k not in ("format", "version")})


def test_resume_on_other_data_is_refused_but_older_checkpoints_still_resume(tmp_path):
    """A run on 100 examples is not continued on 120 (e.g. a quick --limit run mistaken for the real one);
    a checkpoint written before the data size was recorded resumes as before."""
    x, y = data()
    path = tmp_path / "run.npz"

    momentum_trainer(path).fit(x[:100], y[:100], 1)
    with pytest.raises(CheckpointError, match="other settings.*n_train.*100, 120"):
        momentum_trainer(path).fit(x, y, 2)
    rewrite_as_older(path, "n_train", "n_val")
    resumed = momentum_trainer(path)
    resumed.fit(x, y, 2)
    assert resumed.epoch == 2


def test_resume_called_before_fit_does_not_ask_for_the_data_size(tmp_path):
    x, y = data()
    path = tmp_path / "run.npz"

    momentum_trainer(path).fit(x, y, 1)
    t = momentum_trainer(path)
    t.resume(str(path))                        # fit has not seen the data yet
    assert t.epoch == 1


def test_a_checkpoint_from_before_settings_were_saved_is_still_compared(tmp_path):
    """Older files carry no ``settings``: their optimizer, base lr, seed and recipe are compared instead."""
    x, y = data()
    path = tmp_path / "old.npz"

    def trainer(lr=0.05, decay=3e-4):
        net = plain_net()
        return Trainer(net, make_optimizer("momentum", net.named_params(), lr=lr, weight_decay=decay),
                       batch_size=16, checkpoint=str(path), progress=False,
                       checkpoint_metadata={"recipe": {"lr": lr, "weight_decay": decay, "epochs": 2}})

    trainer().fit(x, y, 1)
    rewrite_as_older(path)                                 # as a version before ``settings`` wrote it
    with pytest.raises(CheckpointError, match="other settings.*base_lr"):
        trainer(lr=0.3).fit(x, y, 2)
    with pytest.raises(CheckpointError, match="other settings.*recipe"):
        trainer(decay=1e-3).fit(x, y, 2)
    resumed = trainer()
    resumed.fit(x, y, 2)                                   # the same recipe: resumes (more epochs allowed)
    assert resumed.epoch == 2


def test_the_recipe_split_and_penalties_are_compared_where_the_files_hold_them(tmp_path):
    """New files: the recipe (less epochs and patience) and the split seed. Older files without
    settings: also the penalty options and their seed as the split's."""
    x, y = data()
    path = tmp_path / "run.npz"
    recipe = {"lr": 0.05, "schedule": "cosine", "epochs": 2, "patience": None}

    def trainer(split=0, **changes):
        net = plain_net()
        return Trainer(net, make_optimizer("momentum", net.named_params(), lr=0.05), batch_size=16,
                       checkpoint=str(path), progress=False, settings_extra={"split_seed": split},
                       checkpoint_metadata={"seed": 0, "recipe": {**recipe, **changes.pop("recipe", {})}, **changes})

    trainer().fit(x, y, 1)
    with pytest.raises(CheckpointError, match="recipe"):
        trainer(recipe={"schedule": "constant"}).fit(x, y, 2)
    with pytest.raises(CheckpointError, match="split_seed"):
        trainer(split=3).fit(x, y, 2)
    trainer(recipe={"epochs": 3, "patience": 5}).fit(x, y, 2)               # train longer, stop otherwise: fine

    rewrite_as_older(path)
    with pytest.raises(CheckpointError, match="split_seed"):
        trainer(split=3).fit(x, y, 3)                                         # its split: its seed, 0
    with pytest.raises(CheckpointError, match="penalties"):
        trainer(contractive=[0.01]).fit(x, y, 3)
    trainer(variant="orig", lam=None).fit(x, y, 3)                           # reproduce's label for no penalty
    resumed = trainer()
    resumed.fit(x, y, 4)
    assert resumed.epoch == 4


def test_a_model_saved_without_a_training_state_is_named_as_such(tmp_path):
    from minidnn.checkpoint import save_model
    x, y = data()
    path = tmp_path / "model.npz"
    save_model(path, plain_net())
    with pytest.raises(CheckpointError, match="holds a model but not a training run's state"):
        momentum_trainer(path).fit(x, y, 1)
