"""Sequential networks: whole-network gradients, per-example input gradients, stacking, bookkeeping."""
import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minidnn
from minidnn.gradcheck import check_network, numerical_gradient
from minidnn.layers import (Conv2D, Dense, Flatten, GaussianNoise, MaxPool2D, ReLU, Reshape, Sigmoid, Softmax,
                            Tanh)
from minidnn.losses import BinaryCrossEntropy, MeanSquaredError, SoftmaxCrossEntropy
from minidnn.networks import Sequential, stack
from support.arrays import seeds

activations = st.sampled_from([Sigmoid, Tanh])


def small_convnet(seed, channels=1, size=(6, 5), classes=3, kernel=(3, 2), stride=(1, 2), padding=(1, 0),
                  pool=(2, 1)):
    """Conv → ReLU → MaxPool → Flatten → Dense → Tanh → Dense: every layer kind a ConvNet uses."""
    features = Sequential([Conv2D(channels, 3, kernel, stride=stride, padding=padding, rng=seed), ReLU(),
                           MaxPool2D(pool, stride=1), Flatten()], (channels,) + size)
    width = features.output_shape_[0]
    return Sequential(features.layers + [Dense(width, 4, rng=seed + 1), Tanh(), Dense(4, classes, rng=seed + 2)],
                      features.input_shape, "small ConvNet")


def mlp(widths, activation, seed):
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(Dense(a, b, rng=seed + i))
        if i < len(widths) - 2:
            layers.append(activation())
    return Sequential(layers, (widths[0],), "MLP")


@given(n=st.integers(1, 3), reduction=st.sampled_from(["mean", "sum"]), seed=seeds)
def test_small_convnet_gradient(n, reduction, seed):
    rng = numpy.random.default_rng(seed)
    with minidnn.use_dtype("float64"):
        net = small_convnet(seed % 1000)
        x, labels = rng.standard_normal((n, 1, 6, 5)), rng.integers(0, 3, n)
        check_network(net, x, labels, SoftmaxCrossEntropy(reduction)).assert_ok()


@given(widths=st.lists(st.integers(1, 5), min_size=1, max_size=3).map(lambda w: w + [3]), activation=activations,
       loss=st.sampled_from(["cross_entropy", "mse"]), n=st.integers(1, 4), seed=seeds)
def test_mlp_gradient(widths, activation, loss, n, seed):
    rng = numpy.random.default_rng(seed)
    with minidnn.use_dtype("float64"):
        net = mlp(widths, activation, seed % 1000)
        x = rng.standard_normal((n, widths[0]))
        if loss == "cross_entropy":
            target, loss = rng.integers(0, widths[-1], n), SoftmaxCrossEntropy()
        else:
            target, loss = rng.standard_normal((n, widths[-1])), MeanSquaredError()
        check_network(net, x, target, loss).assert_ok()


def test_a_network_ending_in_softmax_fuses_with_cross_entropy():
    rng = numpy.random.default_rng(0)
    with minidnn.use_dtype("float64"):
        net = Sequential([Dense(4, 3, rng=0), Softmax()], (4,))
        loss = SoftmaxCrossEntropy()
        assert net.fused_end(loss) == 1 and net.fused_end(MeanSquaredError()) == 2
        x, labels = rng.standard_normal((3, 4)), numpy.array([0, 2, 1])
        check_network(net, x, labels, loss).assert_ok()
        value, seen, _ = net.loss_and_backward(x, labels, loss)
    numpy.testing.assert_allclose(seen, net.layers[0].forward(x))           # the loss saw the logits


def test_autoencoder_with_binary_cross_entropy_on_its_own_input():
    rng = numpy.random.default_rng(1)
    with minidnn.use_dtype("float64"):
        ae = Sequential([Dense(6, 3, rng=1), Sigmoid(), Dense(3, 6, rng=2), Sigmoid()], (6,), "AE")
        x = rng.uniform(size=(4, 6))
        check_network(ae, x, x.copy(), BinaryCrossEntropy()).assert_ok()     # a copy: x is perturbed in place


@given(n=st.integers(1, 4), seed=seeds, data=st.data())
def test_input_gradient_is_per_example_for_any_labels(n, seed, data):
    """gx[n] = ∂L(x_n, l_n)/∂x_n with the *sum* reduction: no 1/N, and no other example involved."""
    rng = numpy.random.default_rng(seed)
    labels = numpy.array(data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)))
    with minidnn.use_dtype("float64"):
        net = small_convnet(seed % 1000)
        net.layers.insert(0, GaussianNoise(1.0))                       # must be off: test mode
        x = rng.standard_normal((n, 1, 6, 5))
        value, logits, gx = net.input_gradient(x, labels)
        assert all(p.grad is None for p in net.named_params().values())
        loss = SoftmaxCrossEntropy(reduction="sum")
        numeric = numerical_gradient(lambda: loss.forward(net.forward(x), labels), x)
        numpy.testing.assert_allclose(gx, numeric, rtol=1e-6, atol=1e-9)
        for i in range(n):
            _, _, alone = net.input_gradient(x[i:i + 1].copy(), labels[i:i + 1])
            numpy.testing.assert_allclose(gx[i:i + 1], alone, rtol=1e-12, atol=1e-15)
    assert float(value) == pytest.approx(float(loss.forward(logits, labels)))


def test_stacked_autoencoder_and_classifier_get_reshape_glue_and_check_end_to_end():
    rng = numpy.random.default_rng(2)
    with minidnn.use_dtype("float64"):
        ae = Sequential([Dense(30, 8, rng=3), Sigmoid(), Dense(8, 30, rng=4), Sigmoid()], (30,), "AE")
        classifier = small_convnet(5, size=(6, 5))
        both = stack(ae, classifier)
        assert [type(layer) for layer in both.layers[3:6]] == [Sigmoid, Reshape, Conv2D]
        assert both.input_shape == (30,) and both.output_shape_ == (3,) and both.name == "AE+small ConvNet"
        assert both.layers[0] is ae.layers[0] and both.layers[-1] is classifier.layers[-1]   # weights shared
        x, labels = rng.uniform(size=(2, 30)), numpy.array([2, 0])
        check_network(both, x, labels, SoftmaxCrossEntropy()).assert_ok()
        numpy.testing.assert_allclose(both.forward(x), classifier.forward(ae.forward(x).reshape(2, 1, 6, 5)))
    assert len(stack(ae, mlp([30, 3], Tanh, 0)).layers) == 5                 # same shape: no glue
    with pytest.raises(ValueError, match="cannot stack AE"):
        stack(ae, mlp([7, 3], Tanh, 0))


def test_shapes_are_inferred_and_mismatches_named():
    net = small_convnet(0)
    assert net.output_shape_ == (3,)
    with pytest.raises(ValueError, match=r"expected input \(N, 1, 6, 5\)"):
        net.forward(numpy.zeros((2, 1, 5, 6), numpy.float32))
    with pytest.raises(ValueError, match=r"expected input \(N, 1, 6, 5\)"):
        net.loss_and_backward(numpy.zeros((2, 30), numpy.float32), numpy.zeros(2, int), SoftmaxCrossEntropy())
    with pytest.raises(ValueError, match="layer 1"):
        Sequential([Dense(4, 3), Dense(5, 2)], (4,))


def test_prediction_helpers():
    net = mlp([4, 5, 3], Tanh, 0)
    x = numpy.random.default_rng(0).standard_normal((2500, 4)).astype(numpy.float32)
    logits = net.predict_logits(x, batch_size=1000)                    # three batches, concatenated
    numpy.testing.assert_allclose(logits, net.forward(x), rtol=1e-6)
    p = net.predict_proba(x)
    numpy.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    numpy.testing.assert_array_equal(net.predict(x), logits.argmax(axis=1))


def test_parameters_spec_states_and_conversion():
    net = Sequential([GaussianNoise(0.1, rng=1), Dense(4, 3, rng=0), ReLU(), Dense(3, 2, rng=1)], (4,), "tiny")
    assert list(net.named_params()) == ["1.W", "1.b", "3.W", "3.b"]
    assert net.num_params() == 4 * 3 + 3 + 3 * 2 + 2
    rebuilt = Sequential.from_spec(net.spec())
    assert rebuilt.spec() == net.spec() and rebuilt.name == "tiny"
    assert list(net.layer_states()) == ["0"]
    rebuilt.load_layer_states(net.layer_states())
    x = numpy.zeros((2, 4), numpy.float32)
    numpy.testing.assert_array_equal(rebuilt.layers[0].forward(x, train=True), net.layers[0].forward(x, train=True))
    for p in net.named_params().values():
        p.grad = p.data
    net.zero_grad()
    assert all(p.grad is None for p in net.named_params().values())
    assert net.astype(numpy.float64) is net
    assert {p.data.dtype for p in net.named_params().values()} == {numpy.dtype(numpy.float64)}
    assert "(1) Dense(in_features=4" in repr(net)
