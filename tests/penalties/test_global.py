"""The global penalty (Eq. 5), ‖∂y/∂x‖_F² of a whole MLP in the Gram form, against three references:
input_jacobian_norms (one backward pass per output unit), the explicit finite-difference Jacobian,
and (for the gradient) central differences of loss + penalty through check_network.
"""
import numpy
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import minidnn
from minidnn.gradcheck import check_network
from minidnn.layers import Dense, GaussianNoise, ReLU, Softmax
from minidnn.layers.activations import softmax
from minidnn.losses import SoftmaxCrossEntropy
from minidnn.networks import Sequential, build_model, with_noise
from minidnn.penalties import GlobalContractive, global_penalty, input_jacobian_norms

from . import ZeroLoss, fd_jacobian, freeze_noise, frobenius2, randomize, relu_margin, small_mlp  # noqa: F401

seeds = st.integers(0, 2**32 - 1)
OUTPUTS = ["softmax", "logits"]
HIDDEN = {0: [], 1: [5], 2: [5, 4], 3: [4, 5, 3]}
MARGIN = 0.05


def network(rng, hidden, activation, n_in=6, n_out=4):
    with minidnn.use_dtype("float64"):
        return small_mlp([n_in] + HIDDEN[hidden] + [n_out], activation, rng)


def explicit_norms(net, x, output):
    """‖J‖² of the finite-difference Jacobian of x ↦ softmax(z) or z."""
    f = (lambda v: softmax(net.forward(v))) if output == "softmax" else net.forward
    return frobenius2(fd_jacobian(f, x))


# ---- the value ----------------------------------------------------------------------------------
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("hidden", [0, 1, 2, 3])
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_value_equals_backward_passes_and_explicit_jacobian(output, hidden, activation):
    rng = numpy.random.default_rng(100 * hidden + len(activation))
    net = network(rng, hidden, activation)
    x = rng.standard_normal((5, 6))
    assert relu_margin(net, x) > 1e-3
    net.forward(x)
    closed, injections = global_penalty(net, output, grads=False)
    assert injections == {} and all(p.grad is None for p in net.named_params().values())
    numpy.testing.assert_allclose(closed, input_jacobian_norms(net, x, output), rtol=1e-10)
    numpy.testing.assert_allclose(closed, explicit_norms(net, x, output), rtol=1e-6)


@given(seed=seeds, widths=st.lists(st.integers(1, 5), min_size=1, max_size=4),
       activation=st.sampled_from(["relu", "sigmoid", "tanh"]), output=st.sampled_from(OUTPUTS),
       batch=st.integers(1, 4))
def test_value_any_width(seed, widths, activation, output, batch):
    rng = numpy.random.default_rng(seed)
    with minidnn.use_dtype("float64"):
        net = small_mlp([3] + widths, activation, rng)
    x = rng.standard_normal((batch, 3))
    net.forward(x)
    closed, _ = global_penalty(net, output, grads=False)
    numpy.testing.assert_allclose(closed, input_jacobian_norms(net, x, output), rtol=1e-9, atol=1e-14)


def test_penalty_value_is_lambda_times_the_batch_mean():
    rng = numpy.random.default_rng(0)
    net = network(rng, 2, "tanh")
    x = rng.standard_normal((7, 6))
    for output in OUTPUTS:
        net.forward(x)
        value, _ = GlobalContractive(net, 0.3, output)(net)
        assert value == pytest.approx(0.3 * input_jacobian_norms(net, x, output).mean(), rel=1e-10)


def test_global_equals_layerwise_for_one_block():
    """With no hidden layer, ∂y/∂x is the softmax block's Jacobian: Eq. 5 and Eq. 6 coincide."""
    from minidnn.penalties import layer_norms
    rng = numpy.random.default_rng(1)
    net = network(rng, 0, "relu")
    x = rng.standard_normal((4, 6))
    net.forward(x)
    numpy.testing.assert_allclose(global_penalty(net, grads=False)[0], layer_norms(net, x)["0:Dense+softmax"],
                                  rtol=1e-12)


def test_input_jacobian_norms_of_a_network_ending_in_softmax():
    """A Softmax layer at the end is read as the probabilities, not put through softmax twice."""
    rng = numpy.random.default_rng(2)
    net = network(rng, 1, "sigmoid")
    with_softmax = Sequential(net.layers + [Softmax()], net.input_shape)
    x = rng.standard_normal((3, 6))
    for output in OUTPUTS:
        numpy.testing.assert_allclose(input_jacobian_norms(with_softmax, x, output),
                                      input_jacobian_norms(net, x, output), rtol=1e-12)
    numpy.testing.assert_allclose(input_jacobian_norms(with_softmax, x, "softmax"),
                                  frobenius2(fd_jacobian(with_softmax.forward, x)), rtol=1e-6)


def test_input_jacobian_norms_of_a_convnet_in_batches():
    rng = numpy.random.default_rng(3)
    net = randomize(build_model("ConvNet", rng=0).astype("float64"), rng)
    x = rng.uniform(size=(3, 1, 28, 28))
    whole = input_jacobian_norms(net, x, "softmax")
    numpy.testing.assert_allclose(input_jacobian_norms(net, x, "softmax", batch_size=2), whole, rtol=1e-12)
    f = lambda v: softmax(net.forward(v))                                  # noqa: E731
    some = fd_jacobian(lambda v: f(v), x[:1], eps=1e-6)                   # 784 columns: one example
    numpy.testing.assert_allclose(whole[0], frobenius2(some)[0], rtol=1e-5)


# ---- the gradient -------------------------------------------------------------------------------
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("hidden", [1, 2, 3])
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_gradient(output, hidden, activation):
    """∂(λ P)/∂(x, every W and b), alone and with cross-entropy."""
    rng = numpy.random.default_rng(10 * hidden + len(activation) + len(output))
    for _ in range(100):               # a draw whose ReLU pre-activations are all clear of 0
        net = network(rng, hidden, activation)
        x = rng.standard_normal((3, 6))
        if relu_margin(net, x) > MARGIN:
            break
    labels = rng.integers(0, 4, 3)
    penalty = GlobalContractive(net, 2.0, output)
    alone = check_network(net, x, labels, ZeroLoss(), penalties=[penalty])
    alone.assert_ok(nonzero=False)
    assert all(e.max_abs_grad > 0 for e in alone.entries if e.name.endswith(".W"))
    check_network(net, x, labels, SoftmaxCrossEntropy(), penalties=[penalty]).assert_ok()


@pytest.mark.parametrize("output", OUTPUTS)
def test_gradient_without_hidden_layer(output):
    rng = numpy.random.default_rng(7)
    net = network(rng, 0, "relu")
    x = rng.standard_normal((3, 6))
    penalty = GlobalContractive(net, 1.0, output)
    check_network(net, x, rng.integers(0, 4, 3), ZeroLoss(), penalties=[penalty]).assert_ok(nonzero=False)
    check_network(net, x, rng.integers(0, 4, 3), SoftmaxCrossEntropy(), penalties=[penalty]).assert_ok()


@given(seed=seeds, hidden=st.sampled_from([1, 2, 3]), output=st.sampled_from(OUTPUTS),
       activations=st.lists(st.sampled_from(["relu", "sigmoid", "tanh"]), min_size=3, max_size=3),
       lam=st.sampled_from([0.1, 1.0, 10.0]))
def test_gradient_mixed_activations(seed, hidden, output, activations, lam):
    rng = numpy.random.default_rng(seed)
    with minidnn.use_dtype("float64"):
        net = small_mlp([4] + HIDDEN[hidden] + [3], activations[:hidden], rng)
    x = rng.standard_normal((2, 4))
    assume(relu_margin(net, x) > MARGIN)
    report = check_network(net, x, rng.integers(0, 3, 2), ZeroLoss(), penalties=[GlobalContractive(net, lam, output)])
    report.assert_ok(nonzero=False)


def test_gradient_check_catches_a_wrong_global_gradient():
    class Skewed(GlobalContractive):
        def __call__(self, net):
            value, injections = super().__call__(net)
            return value, {i: 1.001 * g for i, g in injections.items()}
    rng = numpy.random.default_rng(8)
    net = network(rng, 2, "sigmoid")
    x = rng.standard_normal((3, 6))
    assert not check_network(net, x, rng.integers(0, 4, 3), ZeroLoss(), penalties=[Skewed(net, 1.0)]).ok


def test_no_weight_gradients_inside_input_gradient_only():
    rng = numpy.random.default_rng(0)
    net = network(rng, 2, "tanh")
    x = rng.standard_normal((3, 6))
    with net.input_gradient_only():
        net.loss_and_backward(x, numpy.zeros(3, int), SoftmaxCrossEntropy(), penalties=[GlobalContractive(net, 1.0)])
    assert all(p.grad is None for p in net.named_params().values())


# ---- with Gaussian-noise layers (GN + global penalty) ---------------------------------------------
def test_noise_layers_are_allowed_and_change_nothing_in_evaluation():
    rng = numpy.random.default_rng(4)
    net = network(rng, 2, "sigmoid")
    noisy = with_noise(net, 0.3, "all", rng=1)
    assert sum(isinstance(layer, GaussianNoise) for layer in noisy.layers) == 3
    x = rng.standard_normal((3, 6))
    for output in OUTPUTS:
        noisy.forward(x)
        value, _ = GlobalContractive(noisy, 1.0, output)(noisy)
        net.forward(x)
        assert value == pytest.approx(GlobalContractive(net, 1.0, output)(net)[0], rel=1e-12)


def test_gradient_through_a_fixed_noise_draw():
    """Noise on in evaluation (at_test) and rewound before every forward: one fixed function to check."""
    rng = numpy.random.default_rng(5)
    net = network(rng, 2, "tanh")
    noisy = with_noise(net, 0.2, "all", at_test=True, rng=3)
    freeze_noise(noisy)
    x = rng.standard_normal((3, 6))
    assert not numpy.allclose(noisy.forward(x), net.forward(x))
    check_network(noisy, x, rng.integers(0, 4, 3), SoftmaxCrossEntropy(),
                  penalties=[GlobalContractive(noisy, 1.0, "softmax")]).assert_ok()


# ---- clear errors -------------------------------------------------------------------------------
def test_convnet_is_a_clear_error():
    with pytest.raises(ValueError, match=r"global penalty needs an MLP .*ConvNet has blocks \['0:Conv2D\+relu'"):
        GlobalContractive(build_model("ConvNet", rng=0), 1.0)


@pytest.mark.parametrize("layers", [
    lambda: [Dense(4, 3), Dense(3, 2)],                     # a linear hidden block
    lambda: [Dense(4, 3), ReLU(), Dense(3, 2), Softmax()],  # an explicit Softmax layer at the end
    lambda: [Dense(4, 3), ReLU()],                          # no logits layer
])
def test_other_non_mlps_are_clear_errors(layers):
    with pytest.raises(ValueError, match="global penalty needs an MLP"):
        GlobalContractive(Sequential(layers(), (4,)), 1.0)


def test_unknown_output_is_a_clear_error():
    net = build_model("N100-100-10", rng=0)
    with pytest.raises(ValueError, match="output must be 'softmax' or 'logits'"):
        GlobalContractive(net, 1.0, "probabilities")
    with pytest.raises(ValueError, match="output must be 'softmax' or 'logits'"):
        input_jacobian_norms(net, numpy.zeros((1, 784), numpy.float32), "probabilities")
