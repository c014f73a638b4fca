"""Gaussian-noise training (GN, the paper's L1 and L*): where with_noise puts noise, when it is on,
its seeds, σ = 0, and GN combined with the layer-wise penalty (Table 6's "DCN + GN")."""
import numpy
import pytest

import minidnn
from minidnn.gradcheck import check_network
from minidnn.layers import GaussianNoise
from minidnn.losses import SoftmaxCrossEntropy
from minidnn.networks import build_model, with_noise, without_noise
from minidnn.penalties import LayerwiseContractive, find_blocks
from minidnn.training import SGD, Trainer

from . import freeze_noise, small_mlp  # noqa: F401

N = "GaussianNoise"


def kinds(net):
    return [type(layer).__name__ for layer in net.layers]


# ---- where the noise goes ----------------------------------------------------------------------
def test_positions_mlp():
    net = build_model("N100-100-10", rng=0)
    assert kinds(with_noise(net, 0.1, "input")) == [N, "Dense", "ReLU", "Dense", "ReLU", "Dense"]
    assert kinds(with_noise(net, 0.1, "all")) == [N, "Dense", "ReLU", N, "Dense", "ReLU", N, "Dense"]
    ae = build_model("AE400-10", rng=0)
    assert kinds(with_noise(ae, 0.1, "all")) == [N, "Dense", "Sigmoid", N, "Dense"]


def test_positions_convnet():
    """L*: the input, and every feature map that feeds a weight layer (after pooling, not between an
    activation and its pooling); never on the logits."""
    net = build_model("ConvNet", rng=0)
    assert kinds(with_noise(net, 0.1, "input")) == [N] + kinds(net)
    assert kinds(with_noise(net, 0.1, "all")) == [
        N, "Conv2D", "ReLU", "MaxPool2D", N, "Conv2D", "ReLU", "MaxPool2D", N, "Flatten",
        "Dense", "ReLU", N, "Dense"]


def test_layers_are_shared_and_removable():
    net = build_model("ConvNet", rng=0)
    noisy = with_noise(net, 0.1, "all")
    assert [layer for layer in noisy.layers if not isinstance(layer, GaussianNoise)] == net.layers
    assert without_noise(noisy).layers == net.layers
    assert all(layer.sigma == 0.1 and not layer.at_test for layer in noisy.layers if isinstance(layer, GaussianNoise))
    with pytest.raises(ValueError, match="noise position"):
        with_noise(net, 0.1, "hidden")


# ---- when it is on ---------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["input", "all"])
def test_noise_only_in_training_unless_at_test(where):
    net = build_model("N100-100-10", rng=0)
    x = numpy.random.default_rng(0).uniform(size=(5, 784)).astype(numpy.float32)
    clean = net.forward(x)
    noisy = with_noise(net, 0.2, where, rng=1)
    numpy.testing.assert_array_equal(noisy.forward(x), clean)              # evaluation: no noise
    numpy.testing.assert_array_equal(noisy.predict_logits(x), clean)
    assert not numpy.allclose(noisy.forward(x, train=True), clean, atol=1e-3)
    injected = with_noise(net, 0.2, where, at_test=True, rng=1)            # noise injection at test time
    first, second = injected.forward(x), injected.forward(x)
    assert not numpy.allclose(first, clean, atol=1e-3) and not numpy.allclose(first, second, atol=1e-3)


def test_seeded_reproducibility():
    net = build_model("ConvNet", rng=0)
    x = numpy.random.default_rng(0).uniform(size=(2, 1, 28, 28)).astype(numpy.float32)

    def outputs(rng):
        noisy = with_noise(net, 0.3, "all", rng=rng)
        return [noisy.forward(x, train=True) for _ in range(2)]
    a, b, c = outputs(7), outputs(7), outputs(8)
    for u, v in zip(a, b):
        numpy.testing.assert_array_equal(u, v)                             # same seed, same noise
    assert not numpy.allclose(a[0], a[1])                                  # fresh noise every pass
    assert not numpy.allclose(a[0], c[0])                                  # another seed, other noise
    numpy.testing.assert_array_equal(outputs(None)[0], outputs(None)[0])   # the default seed is fixed too
    layers = [layer for layer in with_noise(net, 0.3, "all", rng=7).layers if isinstance(layer, GaussianNoise)]
    draws = [layer.rng.standard_normal(4) for layer in layers]
    assert len({tuple(d) for d in draws}) == len(draws)                    # each layer its own stream


@pytest.mark.parametrize("where", ["input", "all"])
def test_sigma_zero_is_no_noise(where):
    net = build_model("N100-100-10", rng=0)
    rng = numpy.random.default_rng(0)
    x = rng.uniform(size=(8, 784)).astype(numpy.float32)
    y = rng.integers(0, 10, 8)
    noisy = with_noise(net, 0.0, where)
    numpy.testing.assert_array_equal(noisy.forward(x, train=True), net.forward(x, train=True))
    loss = SoftmaxCrossEntropy()
    penalty = LayerwiseContractive(net, 0.01)
    net.zero_grad()
    v1, _, g1 = net.loss_and_backward(x, y, loss, penalties=[penalty])
    grads = {k: p.grad.copy() for k, p in net.named_params().items()}
    net.zero_grad()
    v2, _, g2 = noisy.loss_and_backward(x, y, loss, penalties=[LayerwiseContractive(noisy, 0.01)])
    assert float(v1) == float(v2)
    numpy.testing.assert_array_equal(g1, g2)
    for k, p in net.named_params().items():
        numpy.testing.assert_array_equal(p.grad, grads[k])


# ---- GN + the layer-wise penalty -----------------------------------------------------------------
def test_noise_with_layerwise_penalty_gradient():
    """A fixed noise draw (at_test, rewound before each forward): loss + penalty of the noisy network
    passes the finite-difference check, the penalty reading the noisy forward's caches."""
    rng = numpy.random.default_rng(3)
    with minidnn.use_dtype("float64"):
        net = small_mlp([5, 4, 4, 3], ("sigmoid", "tanh"), rng)
    noisy = with_noise(net, 0.3, "all", at_test=True, rng=2)
    freeze_noise(noisy)
    x = rng.standard_normal((3, 5))
    penalty = LayerwiseContractive(noisy, [1.0, 0.5, 2.0])
    assert [b.layer for b in penalty.blocks] == [b.layer for b in find_blocks(net)]
    check_network(noisy, x, rng.integers(0, 3, 3), SoftmaxCrossEntropy(), penalties=[penalty]).assert_ok()


@pytest.mark.parametrize("model", ["N100-100-10", "ConvNet"])
def test_noise_with_layerwise_penalty_training_step(model):
    """Trainer steps of GN (L*) + DCN on random MNIST-shaped data: finite loss that includes the
    penalty, every parameter updated, and reproducible (same seeds, same weights)."""
    def train():
        net = build_model(model, rng=0)
        noisy = with_noise(net, 0.1, "all", rng=5)
        rng = numpy.random.default_rng(0)
        x = rng.uniform(size=(32,) + net.input_shape).astype(numpy.float32)
        y = rng.integers(0, 10, 32)
        before = {k: p.data.copy() for k, p in net.named_params().items()}
        penalty = LayerwiseContractive(noisy, 0.01)
        trainer = Trainer(noisy, SGD(noisy.named_params(), lr=0.01, momentum=0.9), batch_size=16, seed=0,
                          penalties=[penalty], progress=False)
        record = trainer.fit(x, y, 1)[0]
        return net, before, record, penalty
    net, before, record, penalty = train()
    assert numpy.isfinite(record["train_loss"])
    for k, p in net.named_params().items():
        assert p.data.dtype == numpy.float32
        assert not numpy.array_equal(p.data, before[k]), k
    again, _, record2, _ = train()
    assert record2["train_loss"] == record["train_loss"]
    for (k, p), q in zip(net.named_params().items(), again.named_params().values()):
        numpy.testing.assert_array_equal(p.data, q.data)
