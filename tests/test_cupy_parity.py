"""NumPy and CuPy give the same numbers (within float32 tolerance) for every layer, loss and network.

Skipped unless CuPy is installed and a GPU is usable.
"""
import numpy
import pytest

import minidnn
from minidnn.layers import (Conv2D, Dense, Flatten, GaussianNoise, MaxPool2D, ReLU, Reshape, Sigmoid, Softmax,
                            Tanh)
from minidnn.losses import BinaryCrossEntropy, MeanSquaredError, SoftmaxCrossEntropy
from minidnn.networks import build_model
from minidnn.training import make_optimizer

cupy = pytest.importorskip("cupy")

TOLERANCE = {"rtol": 2e-4, "atol": 2e-5}        # float32, different summation orders


@pytest.fixture(scope="module")
def gpu():
    try:
        with minidnn.use_backend("cupy") as module:
            return module
    except minidnn.BackendError as exc:
        pytest.skip(f"CuPy is installed but unusable here: {exc}")


def host(a):
    return minidnn.to_numpy(a)


def close(a, b, what):
    numpy.testing.assert_allclose(host(a), host(b), err_msg=what, **TOLERANCE)


def data(shape, seed=0, kind="normal"):
    rng = numpy.random.default_rng(seed)
    if kind == "distinct":                       # no ties for max-pooling
        return ((rng.permutation(int(numpy.prod(shape))) - 20.0) * 0.05).reshape(shape).astype(numpy.float32)
    return rng.standard_normal(shape).astype(numpy.float32)


LAYERS = {
    "dense": (lambda: Dense(5, 4, rng=0), (3, 5), "normal", False),
    "conv": (lambda: Conv2D(2, 3, (3, 2), stride=(2, 1), padding=(1, 2), rng=0), (2, 2, 7, 6), "normal", False),
    "maxpool": (lambda: MaxPool2D(3, 2, 1), (2, 2, 7, 6), "distinct", False),
    "flatten": (Flatten, (2, 3, 2, 2), "normal", False),
    "reshape": (lambda: Reshape((2, 3)), (4, 6), "normal", False),
    "relu": (ReLU, (3, 6), "normal", False),
    "sigmoid": (Sigmoid, (3, 6), "normal", False),
    "tanh": (Tanh, (3, 6), "normal", False),
    "softmax": (Softmax, (3, 6), "normal", False),
    "noise-train": (lambda: GaussianNoise(0.5, rng=3), (3, 6), "normal", True),
    "noise-test": (lambda: GaussianNoise(0.5, at_test=True, rng=3), (3, 6), "normal", False),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_forward_and_backward(gpu, name):
    make, shape, kind, train = LAYERS[name]
    on_cpu, on_gpu = make(), make().astype(module=gpu)
    x = data(shape, kind=kind)
    y_cpu = on_cpu.forward(x, train=train)
    y_gpu = on_gpu.forward(gpu.asarray(x), train=train)
    assert isinstance(y_gpu, gpu.ndarray) and y_gpu.dtype == numpy.float32
    close(y_gpu, y_cpu, f"{name} forward")
    gy = data(y_cpu.shape, seed=1)
    close(on_gpu.backward(gpu.asarray(gy)), on_cpu.backward(gy), f"{name} backward")
    for key, p in on_cpu.params.items():
        close(on_gpu.params[key].grad, p.grad, f"{name} grad {key}")


@pytest.mark.parametrize("loss, target", [
    (SoftmaxCrossEntropy(), numpy.array([0, 3, 1, 4])), (SoftmaxCrossEntropy("sum"), numpy.array([2, 2, 0, 1])),
    (BinaryCrossEntropy(), data((4, 5), 2) > 0), (MeanSquaredError("sum"), data((4, 5), 2)),
], ids=["ce", "ce-sum", "bce", "mse-sum"])
def test_losses(gpu, loss, target):
    z = 3 * data((4, 5))
    target = target.astype(numpy.float32) if target.dtype == bool else target
    value_cpu = loss.forward(z, target)
    g_cpu = loss.backward()
    value_gpu = loss.forward(gpu.asarray(z), gpu.asarray(target))
    close(value_gpu, value_cpu, "loss value")
    close(loss.backward(), g_cpu, "loss gradient")


@pytest.mark.parametrize("name, optimizer", [("N100-100-10", "momentum"), ("AE400-10", "adam"),
                                             ("ConvNet", "nesterov")])
def test_network_training_steps(gpu, name, optimizer):
    """Three training steps agree on both backends.

    Adam runs in float64: its first steps move every weight by about ±lr·sign(g), so a
    gradient entry near zero whose float32 rounding differs between backends (measured on
    an H200: AE400-10's weights) flips a whole ±lr step; in float64 that cannot happen.
    """
    dtype = numpy.float64 if optimizer == "adam" else numpy.float32
    with minidnn.use_dtype(dtype):
        cpu_net, gpu_net = build_model(name, rng=0), build_model(name, rng=0).astype(module=gpu)
    x = numpy.random.default_rng(0).uniform(size=(16,) + cpu_net.input_shape).astype(dtype)
    y = numpy.arange(16) % 10
    results = []
    for net, xp in ((cpu_net, numpy), (gpu_net, gpu)):
        with minidnn.use_backend("numpy" if xp is numpy else "cupy"):
            opt = make_optimizer(optimizer, net.named_params(), lr=0.01, weight_decay=1e-3)
            losses = []
            for _ in range(3):
                opt.zero_grad()
                value, _, _ = net.loss_and_backward(xp.asarray(x), xp.asarray(y), SoftmaxCrossEntropy())
                opt.step()
                losses.append(float(value))
            _, _, gx = net.input_gradient(xp.asarray(x), xp.asarray(y))
            results.append((losses, gx, net.predict_logits(xp.asarray(x))))
    (cpu_losses, cpu_gx, cpu_logits), (gpu_losses, gpu_gx, gpu_logits) = results
    numpy.testing.assert_allclose(gpu_losses, cpu_losses, **TOLERANCE)
    close(gpu_gx, cpu_gx, "input gradient")
    close(gpu_logits, cpu_logits, "logits after training")
    for key, p in cpu_net.named_params().items():
        q = gpu_net.named_params()[key]
        assert isinstance(q.data, gpu.ndarray) and q.data.dtype == dtype
        close(q.data, p.data, f"weights {key}")


def test_noise_is_the_same_draw_on_both(gpu):
    """Noise is drawn on the host from the layer's seeded Generator, then copied: identical on CPU and GPU."""
    x = numpy.zeros((4, 3), numpy.float32)
    on_cpu = GaussianNoise(1.0, rng=9).forward(x, train=True)
    on_gpu = GaussianNoise(1.0, rng=9).forward(gpu.asarray(x), train=True)
    numpy.testing.assert_array_equal(host(on_gpu), on_cpu)


def test_trainer_epochs_agree(gpu):
    """Trainer.fit on CuPy (losses and error counts kept on the device, read every 20 batches) gives
    the NumPy run's history and weights: 50 batches, validation and the best weights restored."""
    from minidnn.training import Trainer
    rng = numpy.random.default_rng(5)
    x = rng.uniform(size=(50 * 8, 784)).astype(numpy.float32)
    y = rng.integers(0, 10, len(x))
    runs = []
    for xp, name in ((numpy, "numpy"), (gpu, "cupy")):
        net = build_model("N100-100-10", rng=0)
        if xp is gpu:
            net.astype(module=gpu)
        with minidnn.use_backend(name):
            trainer = Trainer(net, make_optimizer("momentum", net.named_params(), lr=0.05, weight_decay=1e-3),
                              batch_size=8, seed=1, progress=False)
            history = trainer.fit(xp.asarray(x), xp.asarray(y), 2, xp.asarray(x[:64]), xp.asarray(y[:64]))
        runs.append((history, net))
    (cpu_history, cpu_net), (gpu_history, gpu_net) = runs
    # the loss to rounding; the error rates by one example's verdict at most (400 training, 64 validation)
    for key, atol in (("train_loss", 0), ("train_error", 1 / 400), ("val_error", 1 / 64)):
        numpy.testing.assert_allclose([r[key] for r in gpu_history], [r[key] for r in cpu_history],
                                      err_msg=key, rtol=1e-4, atol=atol)
    for key, p in cpu_net.named_params().items():
        close(gpu_net.named_params()[key].data, p.data, f"weights {key}")
