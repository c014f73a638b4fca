"""The Trainer loop: learning, validation and early stopping, logs, and a clear error on NaNs."""
import json

import numpy
import pytest

from minidnn.layers import Dense, Sigmoid, Tanh
from minidnn.losses import BinaryCrossEntropy
from minidnn.networks import Sequential
from minidnn.training import Adam, Trainer, classification_error, make_optimizer, make_schedule, mean_loss


def separable(n=300, seed=0, features=6, classes=3):
    """Labels are the argmax of a fixed linear map, so a linear classifier can get them all right."""
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal((n, features)).astype(numpy.float32)
    teacher = numpy.random.default_rng(99).standard_normal((features, classes))
    return x, (x @ teacher).argmax(axis=1)


def mlp(seed=0):
    return Sequential([Dense(6, 16, rng=seed), Tanh(), Dense(16, 3, rng=seed + 1)], (6,), "mlp")


def test_training_lowers_loss_and_error():
    x, y = separable()
    x_val, y_val = separable(200, seed=1)
    net = mlp()
    before = classification_error(net, x_val, y_val)
    trainer = Trainer(net, Adam(net.named_params(), lr=0.01), batch_size=32, progress=False)
    history = trainer.fit(x, y, 8, x_val, y_val)
    assert [r["epoch"] for r in history] == list(range(1, 9))
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    assert history[-1]["train_error"] < history[0]["train_error"]
    assert before > 0.4 and classification_error(net, x_val, y_val) < 0.1
    assert trainer.best["metric"] == min(r["val_error"] for r in history)


def test_schedule_sets_each_epochs_learning_rate():
    x, y = separable(64)
    net = mlp()
    trainer = Trainer(net, make_optimizer("momentum", net.named_params(), lr=0.1), batch_size=16,
                      schedule=make_schedule("step:1:0.5", 3), progress=False)
    assert [r["lr"] for r in trainer.fit(x, y, 3)] == pytest.approx([0.1, 0.05, 0.025])


def test_early_stopping_restores_the_best_weights():
    """Validation labels are permuted, so validation error gets worse as training fits the data: the best
    epoch is an early one, training stops `patience` epochs later, and its weights come back."""
    x, y = separable()
    x_val, y_val = x[:100], (y[:100] + 1) % 3
    net = mlp()
    trainer = Trainer(net, Adam(net.named_params(), lr=0.02), batch_size=32, patience=2, progress=False)
    history = trainer.fit(x, y, 20, x_val, y_val)
    best = trainer.best["epoch"]
    assert len(history) == best + 2 < 20
    assert history[best - 1]["val_error"] == min(r["val_error"] for r in history)

    replay = mlp()                      # the same run, stopped at the best epoch, gives the same weights
    Trainer(replay, Adam(replay.named_params(), lr=0.02), batch_size=32, progress=False).fit(x, y, best)
    for name, p in net.named_params().items():
        numpy.testing.assert_array_equal(p.data, replay.named_params()[name].data)
    assert classification_error(net, x_val, y_val) == trainer.best["metric"]


def test_the_log_has_one_json_line_per_epoch(tmp_path):
    x, y = separable(64)
    net = mlp()
    log = tmp_path / "run" / "log.jsonl"
    Trainer(net, Adam(net.named_params()), batch_size=16, log=str(log), progress=False).fit(x, y, 3, x, y)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert {"lr", "train_loss", "train_error", "val_error", "weight_decay_term"} <= set(records[0])


def test_a_nan_in_the_data_stops_training_and_names_the_epoch():
    x, y = separable(64)
    x[40, 2] = numpy.nan
    net = mlp()
    trainer = Trainer(net, Adam(net.named_params()), batch_size=64, progress=False)
    with pytest.raises(FloatingPointError, match="at epoch 1"):
        trainer.fit(x, y, 2)


def test_loss_metric_trains_an_autoencoder():
    rng = numpy.random.default_rng(0)
    codes = rng.uniform(size=(200, 2))
    x = (1 / (1 + numpy.exp(-codes @ rng.standard_normal((2, 8)) * 3))).astype(numpy.float32)
    ae = Sequential([Dense(8, 3, rng=0), Sigmoid(), Dense(3, 8, rng=1), Sigmoid()], (8,), "AE")
    loss = BinaryCrossEntropy()
    before = mean_loss(ae, x, x, loss)
    trainer = Trainer(ae, Adam(ae.named_params(), lr=0.02), loss=loss, batch_size=20, metric="loss",
                      progress=False)
    history = trainer.fit(x, x, 5, x, x)
    assert "train_error" not in history[0] and history[-1]["val_loss"] < before
    assert trainer.evaluate(x, x) == pytest.approx(trainer.best["metric"], rel=1e-6)


def test_empty_training_or_validation_data_is_refused():
    x, y = separable(10)
    net = mlp()
    trainer = Trainer(net, Adam(net.named_params()), progress=False)
    with pytest.raises(ValueError, match="no training examples"):
        trainer.fit(x[:0], y[:0], 1)
    with pytest.raises(ValueError, match="empty validation set"):
        trainer.fit(x, y, 1, x[:0], y[:0])


def test_mismatched_inputs_and_targets_are_refused():
    x, y = separable(10)
    net = mlp()
    with pytest.raises(ValueError, match="10 inputs but 9 targets"):
        Trainer(net, Adam(net.named_params()), progress=False).fit(x, y[:9], 1)
