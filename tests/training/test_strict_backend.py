"""The CuPy code path, checked without a GPU: whole training steps on the strict stand-in.

Every array op runs on ``StrictArray``s (tests/support/strict_xp.py), which raise TypeError
the moment library code mixes in a NumPy array or converts implicitly, as CuPy does. The
numbers must equal the NumPy run's, and float32 must stay float32 everywhere.
"""
import numpy
import pytest

import minidnn
from minidnn.checkpoint import load_model, save_model
from minidnn.gradcheck import check_layer, check_network
from minidnn.layers import Conv2D, Dense, Flatten, GaussianNoise, MaxPool2D, ReLU, Sigmoid, Tanh
from minidnn.losses import BinaryCrossEntropy, MeanSquaredError, SoftmaxCrossEntropy
from minidnn.networks import Sequential
from minidnn.training import Trainer, make_optimizer
from support.strict_xp import StrictArray, strict

ARRAY_TYPE = {"numpy": (numpy.ndarray, numpy.generic), "strict": StrictArray}   # NumPy reductions give scalars


def mlp():
    return Sequential([Dense(6, 10, rng=0), Sigmoid(), Dense(10, 8, rng=1), Tanh(), Dense(8, 3, rng=2)], (6,), "mlp")


def convnet():
    return Sequential([GaussianNoise(0.1, rng=7), Conv2D(2, 3, (3, 2), stride=(1, 2), padding=1, rng=0), ReLU(),
                       MaxPool2D(2, stride=1), Flatten(), GaussianNoise(0.05, rng=8), Dense(36, 3, rng=1)],
                      (2, 5, 6), "convnet")


NETWORKS = {"mlp": mlp, "convnet": convnet}


def batch(kind, n=8):
    rng = numpy.random.default_rng(1)
    shape = (n,) + NETWORKS[kind]().input_shape
    return rng.standard_normal(shape).astype(numpy.float32), rng.integers(0, 3, n)


def assert_array(a, backend_name, dtype=numpy.float32):
    assert isinstance(a, ARRAY_TYPE[backend_name]), f"{type(a).__name__} on the {backend_name} backend"
    assert a.dtype == dtype, f"{a.dtype}, expected {dtype}"


def training_steps(kind, backend_name, optimizer, steps=6):
    """``steps`` full training steps on one batch; returns the losses and the final weights (on the host)."""
    net = NETWORKS[kind]()
    if backend_name == "strict":
        net.astype(module=strict)
    x_host, y_host = batch(kind)
    with minidnn.use_backend(backend_name) as xp:
        x, y = xp.asarray(x_host), xp.asarray(y_host)
        params = net.named_params()
        opt = make_optimizer(optimizer, params, lr=0.02 if optimizer == "adam" else 0.1, weight_decay=1e-3)
        losses = []
        for _ in range(steps):
            opt.zero_grad()
            value, out, gx = net.loss_and_backward(x, y, SoftmaxCrossEntropy(), train=True)
            for a in (value, out, gx):
                assert_array(a, backend_name)
            opt.step()
            for p in params.values():
                assert_array(p.data, backend_name)
                assert_array(p.grad, backend_name)
            for slot in opt.state_arrays().values():
                assert_array(slot, backend_name)
            losses.append(float(value))
        assert_array(net.predict_proba(x), backend_name)
        assert_array(net.predict(x), backend_name, numpy.int64)
        assert_array(net.input_gradient(x, y)[2], backend_name)
    return losses, {k: minidnn.to_numpy(p.data) for k, p in params.items()}


@pytest.mark.parametrize("optimizer", ["momentum", "nesterov", "adam"])
@pytest.mark.parametrize("kind", list(NETWORKS))
def test_training_steps_on_the_strict_backend_match_numpy(kind, optimizer):
    strict_losses, strict_weights = training_steps(kind, "strict", optimizer)
    numpy_losses, numpy_weights = training_steps(kind, "numpy", optimizer)
    assert strict_losses[-1] < strict_losses[0]
    numpy.testing.assert_allclose(strict_losses, numpy_losses, rtol=1e-5)
    for name, w in numpy_weights.items():
        numpy.testing.assert_allclose(strict_weights[name], w, rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("loss, target", [(BinaryCrossEntropy(), "input"), (MeanSquaredError(), "input")])
def test_autoencoder_losses_on_the_strict_backend(loss, target):
    net = Sequential([Dense(6, 3, rng=0), Sigmoid(), Dense(3, 6, rng=1), Sigmoid()], (6,)).astype(module=strict)
    with minidnn.use_backend("strict") as xp:
        x = xp.asarray(numpy.random.default_rng(0).uniform(size=(5, 6)).astype(numpy.float32))
        value, _, gx = net.loss_and_backward(x, x, loss)
        assert_array(value, "strict")
        assert_array(gx, "strict")


def test_trainer_checkpoint_and_resume_on_the_strict_backend(tmp_path):
    """fit (shuffling, evaluation, best weights), checkpoint writing and resuming, all on strict arrays."""
    x_host, y_host = batch("convnet", 40)

    def fit(epochs, path):
        net = convnet().astype(module=strict)
        with minidnn.use_backend("strict") as xp:
            x, y = xp.asarray(x_host), xp.asarray(y_host)
            trainer = Trainer(net, make_optimizer("adam", net.named_params(), lr=0.01, weight_decay=1e-3),
                              batch_size=16, checkpoint=str(path), progress=False)
            trainer.fit(x, y, epochs, x[:16], y[:16])
        return net, trainer

    whole, trainer = fit(3, tmp_path / "whole.npz")
    fit(1, tmp_path / "resumed.npz")
    resumed, _ = fit(3, tmp_path / "resumed.npz")
    assert trainer.history[-1]["train_loss"] < trainer.history[0]["train_loss"]
    for name, p in whole.named_params().items():
        assert_array(p.data, "strict")
        numpy.testing.assert_array_equal(p.data.get(), resumed.named_params()[name].data.get())

    save_model(tmp_path / "m.npz", whole)
    into = convnet().astype(module=strict)
    load_model(tmp_path / "m.npz", into=into)
    for name, p in into.named_params().items():
        assert_array(p.data, "strict")
        numpy.testing.assert_array_equal(p.data.get(), whole.named_params()[name].data.get())


def test_gradient_checks_run_on_the_strict_backend():
    rng = numpy.random.default_rng(0)
    with minidnn.use_dtype("float64"), minidnn.use_backend("strict") as xp:
        layer = Conv2D(2, 2, (2, 3), stride=(2, 1), padding=(1, 1), rng=0)
        check_layer(layer, xp.asarray(rng.standard_normal((2, 2, 4, 5)))).assert_ok()
        net = Sequential([Dense(4, 5, rng=0), Tanh(), Dense(5, 3, rng=1)], (4,))
        check_network(net, xp.asarray(rng.standard_normal((3, 4))), xp.asarray([0, 2, 1]),
                      SoftmaxCrossEntropy()).assert_ok()


@pytest.mark.parametrize("kind", list(NETWORKS))
def test_float64_networks_stay_float64(kind):
    with minidnn.use_dtype("float64"):
        net = NETWORKS[kind]()
    x_host, y_host = batch(kind)
    with minidnn.use_backend("strict") as xp:
        net.astype(module=strict)
        value, out, gx = net.loss_and_backward(xp.asarray(x_host.astype(numpy.float64)), xp.asarray(y_host),
                                               SoftmaxCrossEntropy())
        for a in (value, out, gx, *(p.grad for p in net.named_params().values())):
            assert_array(a, "strict", numpy.float64)


class HostNoise(GaussianNoise):
    """A backend bypass of the kind these tests exist to catch: host noise added to a device array."""

    def forward(self, x, train=False):
        if not self.active(train):
            return x
        return x + self.rng.standard_normal(x.shape).astype(x.dtype) * self.sigma


def test_a_layer_that_bypasses_the_backend_is_caught():
    net = Sequential([HostNoise(0.1), Dense(6, 3, rng=0)], (6,)).astype(module=strict)
    x_host, y_host = batch("mlp")
    with minidnn.use_backend("strict") as xp:
        net.loss_and_backward(xp.asarray(x_host), xp.asarray(y_host), SoftmaxCrossEntropy(), train=False)
        with pytest.raises(TypeError, match="not allowed"):
            net.loss_and_backward(xp.asarray(x_host), xp.asarray(y_host), SoftmaxCrossEntropy(), train=True)


@pytest.mark.parametrize("penalised, metric, n", [(False, "error", 180), (True, "error", 180), (False, "error", 178),
                                                  (False, "loss", 177)])
def test_an_epoch_reads_the_host_once_per_twenty_batches(monkeypatch, penalised, metric, n):
    """On CuPy every read of a device value on the host waits for the GPU. An epoch of 45 batches
    (the last one partial when n < 180) reads the losses and error counts at batches 20, 40 and 45
    (the losses alone for metric='loss'), and the training step itself reads nothing, with or
    without a Jacobian penalty. The epoch's numbers are the NumPy run's."""
    from minidnn.penalties import LayerwiseContractive
    from minidnn.training import trainer as trainer_module
    assert trainer_module.HOST_READ_EVERY == 20
    rng = numpy.random.default_rng(3)
    x_host = rng.standard_normal((n, 6)).astype(numpy.float32)
    y_host = rng.integers(0, 3, n) if metric == "error" else rng.standard_normal((n, 3)).astype(numpy.float32)
    reads = []
    for name in ("get", "item", "__float__", "__int__", "__bool__", "tolist"):
        original = getattr(StrictArray, name)
        monkeypatch.setattr(StrictArray, name, lambda self, *a, _f=original, _n=name, **k: (reads.append(_n), _f(self, *a, **k))[1])

    def epoch(backend_name):
        net = mlp()
        if backend_name == "strict":
            net.astype(module=strict)
        with minidnn.use_backend(backend_name) as xp:
            penalties = [LayerwiseContractive(net, 0.01)] if penalised else []
            loss = SoftmaxCrossEntropy() if metric == "error" else MeanSquaredError()
            trainer = Trainer(net, make_optimizer("momentum", net.named_params(), lr=0.1, weight_decay=1e-3),
                              loss=loss, batch_size=4, penalties=penalties, metric=metric, progress=False)
            reads.clear()
            result = trainer.train_epoch(xp.asarray(x_host), xp.asarray(y_host))
            return result, list(reads)

    result, strict_reads = epoch("strict")
    assert strict_reads == (["get", "get"] * 3 if metric == "error" else ["get"] * 3)
    expected, _ = epoch("numpy")
    assert result.keys() == expected.keys()
    assert result.get("train_error") == expected.get("train_error")
    assert result["train_loss"] == pytest.approx(expected["train_loss"], rel=1e-6)


def test_the_epoch_loss_weights_each_batch_by_its_size():
    """train_loss is Σ_b loss_b · m_b / n over the batches as trained (the last one holds 1 of 4 here),
    and train_error counts the wrong predictions of every batch, read 20 batches at a time."""
    rng = numpy.random.default_rng(4)
    x = rng.standard_normal((4 * 44 + 1, 6)).astype(numpy.float32)
    y = rng.integers(0, 3, len(x))
    net = mlp()
    trainer = Trainer(net, make_optimizer("sgd", net.named_params(), lr=0.05), batch_size=4, progress=False)
    seen = []
    trained = net.loss_and_backward

    def recording(xb, tb, *args, **kwargs):
        value, out, g = trained(xb, tb, *args, **kwargs)
        seen.append((float(value), xb.shape[0], int((out.argmax(axis=1) != tb).sum())))
        return value, out, g

    net.loss_and_backward = recording
    result = trainer.train_epoch(x, y)
    assert [m for _, m, _ in seen] == [4] * 44 + [1]
    assert result["train_loss"] == sum(v * m for v, m, _ in seen) / len(x)
    assert result["train_error"] == sum(w for _, _, w in seen) / len(x)


def test_a_nan_loss_is_named_by_its_batch_though_read_later():
    """The host reads the losses every 20 batches; a NaN is still reported by the batch it was in."""
    rng = numpy.random.default_rng(3)
    x = rng.standard_normal((30 * 2, 6)).astype(numpy.float32)
    x[14, 0] = numpy.nan                                   # in whichever batch the shuffle puts example 14
    net = mlp()
    trainer = Trainer(net, make_optimizer("sgd", net.named_params(), lr=0.1), batch_size=2, seed=0, progress=False)
    order = numpy.random.default_rng(0).permutation(len(x))           # the trainer's first shuffle
    batch_of_nan = int(numpy.nonzero(order == 14)[0][0]) // 2
    with pytest.raises(FloatingPointError, match=rf"at epoch 1, batch {batch_of_nan} "):
        trainer.train_epoch(x, rng.integers(0, 3, len(x)))
