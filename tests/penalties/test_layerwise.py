"""The layer-wise penalty (Eq. 6): its value and its exact gradient, checked by finite differences.

check_network compares ∂(loss + penalties)/∂(x and every parameter) from one backward sweep (the
penalty's weight gradients plus its injections) with central differences of the same scalar, in
float64, at rel. error 1e-6 (atol 1e-9). With ZeroLoss the check sees the penalty's gradient alone,
so a loss gradient cannot hide a penalty mistake.
"""
import numpy
import pytest
from hypothesis import assume, currently_in_test_context, given
from hypothesis import strategies as st

import minidnn
from minidnn.gradcheck import check_network
from minidnn.layers import Conv2D, Dense, Flatten, MaxPool2D, Softmax, Tanh
from minidnn.losses import SoftmaxCrossEntropy
from minidnn.networks import Sequential, build_model
from minidnn.penalties import LayerwiseContractive, find_blocks, layer_norms

from . import ACTIVATIONS, ZeroLoss, randomize, relu_margin, small_mlp  # noqa: F401

seeds = st.integers(0, 2**32 - 1)
MARGIN = 0.05      # |pre-activation| at every ReLU: far beyond what a 1e-5 step moves it


def relu_alive(net, x):
    """Every ReLU layer has an active unit (else the gradients through it vanish: a vacuous check)."""
    h = x
    for layer in net.layers:
        if type(layer).__name__ == "ReLU" and not (h > 0).any():
            return False
        h = layer.forward(h)
    return True


def check(net, x, labels, penalty, loss=None):
    """Both checks: the penalty alone (ZeroLoss), and with cross-entropy (as trained)."""
    alone = check_network(net, x, labels, ZeroLoss(), penalties=[penalty])
    alone.assert_ok(nonzero=False)
    assert any(e.max_abs_grad > 0 for e in alone.entries if e.name.endswith(".W"))
    report = check_network(net, x, labels, loss or SoftmaxCrossEntropy(), penalties=[penalty])
    report.assert_ok(nonzero=False)
    # dead ReLU paths can zero a whole gradient (e.g. ∂/∂x): such a draw proves little, draw again
    nonzero = all(e.max_abs_grad > 0 for e in report.entries)
    if currently_in_test_context():
        assume(nonzero)
    else:
        assert nonzero, report.table()
    return alone


# ---- MLPs: every activation, one λ and per-block λ lists ------------------------------------------
@pytest.mark.parametrize("activations", [("sigmoid",), ("tanh",), ("relu",), ("sigmoid", "tanh"),
                                         ("relu", "tanh", "sigmoid")])
@given(seed=seeds, lam=st.sampled_from([0.3, 1.0, 5.0]))
def test_mlp_gradient_one_lambda(activations, seed, lam):
    rng = numpy.random.default_rng(seed)
    widths = [5] + [4, 3, 4][:len(activations)] + [3]
    with minidnn.use_dtype("float64"):
        net = small_mlp(widths, activations, rng)
    x = rng.standard_normal((4, 5))
    assume(relu_margin(net, x) > MARGIN and relu_alive(net, x))
    check(net, x, rng.integers(0, 3, 4), LayerwiseContractive(net, lam))


@given(seed=seeds, lams=st.lists(st.sampled_from([0.0, 0.1, 1.0, 3.0]), min_size=3, max_size=3))
def test_mlp_gradient_per_block_lambdas(seed, lams):
    assume(any(lams[:2]))        # a hidden block's penalty (the softmax one alone is tested elsewhere)
    rng = numpy.random.default_rng(seed)
    with minidnn.use_dtype("float64"):
        net = small_mlp([4, 5, 3, 3], ("sigmoid", "tanh"), rng)
    x = rng.standard_normal((3, 4))
    penalty = LayerwiseContractive(net, lams)
    assert penalty.lams == lams
    check(net, x, rng.integers(0, 3, 3), penalty)


def test_per_block_lambdas_weight_each_block():
    """value = Σ_j λ_j mean_n ‖J_j‖², with the blocks in find_blocks order; λ_j = 0 skips block j."""
    rng = numpy.random.default_rng(0)
    with minidnn.use_dtype("float64"):
        net = small_mlp([4, 5, 3, 3], ("sigmoid", "relu"), rng)
    x = rng.standard_normal((6, 4))
    means = [v.mean() for v in layer_norms(net, x).values()]
    for lams in ([1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0], [0.5, 0.25, 4.0]):
        net.forward(x)
        value, injections = LayerwiseContractive(net, lams)(net)
        assert value == pytest.approx(sum(l * m for l, m in zip(lams, means)), rel=1e-12)
        if lams[1] == 0 and lams[2] == 0:
            assert set(injections) == {0}                 # the sigmoid block's φ'' term only
    net.forward(x)
    value, _ = LayerwiseContractive(net, 0.7)(net)
    assert value == pytest.approx(0.7 * sum(means), rel=1e-12)


def test_linear_block_and_softmax_layer_gradient():
    """A Dense feeding a Dense (J = Wᵀ) and a network ending in an explicit Softmax layer."""
    rng = numpy.random.default_rng(5)
    with minidnn.use_dtype("float64"):
        net = randomize(Sequential([Dense(4, 3, rng=rng), Dense(3, 5, rng=rng), Tanh(), Dense(5, 3, rng=rng),
                                    Softmax()], (4,)), rng)
    assert [b.activation for b in find_blocks(net)] == ["linear", "tanh", "softmax"]
    x = rng.standard_normal((3, 4))
    check(net, x, rng.integers(0, 3, 3), LayerwiseContractive(net, [0.5, 1.0, 2.0]))


# ---- convolutions: hypothesis draws the geometry -------------------------------------------------
@st.composite
def conv_nets(draw):
    """Conv (any kernel, stride, padding) + act → MaxPool → Flatten → Dense + act → Dense."""
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1))
    h, w = draw(st.integers(max(2, kh), kh + 3)), draw(st.integers(max(2, kw), kw + 3))
    c, f = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    act1, act2 = draw(st.sampled_from(["relu", "sigmoid", "tanh"])), draw(st.sampled_from(["relu", "sigmoid"]))
    pool = draw(st.sampled_from([1, 2]))      # with stride 1: overlapping windows
    return dict(kernel=(kh, kw), stride=(sh, sw), padding=(ph, pw), image=(c, h, w), filters=f,
                acts=(act1, act2), pool=pool)


@given(spec=conv_nets(), seed=seeds, lam=st.sampled_from([0.5, 2.0]))
def test_convnet_gradient(spec, seed, lam):
    rng = numpy.random.default_rng(seed)
    c, h, w = spec["image"]
    with minidnn.use_dtype("float64"):
        conv = Conv2D(c, spec["filters"], spec["kernel"], spec["stride"], spec["padding"], rng=rng)
        f, oh, ow = conv.output_shape((c, h, w))
        pool = MaxPool2D(min(spec["pool"], oh, ow), stride=1)
        _, qh, qw = pool.output_shape((f, oh, ow))
        net = randomize(Sequential([conv, ACTIVATIONS[spec["acts"][0]](), pool, Flatten(),
                                    Dense(f * qh * qw, 3, rng=rng), ACTIVATIONS[spec["acts"][1]](),
                                    Dense(3, 2, rng=rng)], (c, h, w)), rng, scale=1.5)
    x = rng.standard_normal((2, c, h, w))
    assume(relu_margin(net, x) > MARGIN and relu_alive(net, x))
    check(net, x, rng.integers(0, 2, 2), LayerwiseContractive(net, lam))


def test_paper_convnet_shape_gradient_spot_check():
    """The ConvNet's layout (conv-relu-pool twice, dense) at a small size, with a per-block λ list."""
    rng = numpy.random.default_rng(1)
    with minidnn.use_dtype("float64"):
        net = randomize(Sequential([Conv2D(1, 2, 3, rng=rng), ACTIVATIONS["sigmoid"](), MaxPool2D(2),
                                    Conv2D(2, 2, (2, 3), padding=(1, 1), rng=rng), ACTIVATIONS["tanh"](),
                                    MaxPool2D(2), Flatten(), Dense(2 * 2 * 1, 3, rng=rng),
                                    ACTIVATIONS["sigmoid"](), Dense(3, 3, rng=rng)], (1, 8, 9)), rng)
    x = rng.standard_normal((2, 1, 8, 9))
    check(net, x, rng.integers(0, 3, 2), LayerwiseContractive(net, [1.0, 0.5, 2.0, 1.0]))


# ---- the check can fail: a negative control -----------------------------------------------------
class SkewedInjections(LayerwiseContractive):
    """The penalty with its injected gradients 0.1% off."""

    def __call__(self, net):
        value, injections = super().__call__(net)
        return value, {i: 1.001 * g for i, g in injections.items()}


class SkewedWeights(LayerwiseContractive):
    """The penalty with an extra 0.1% of its value's direct weight gradient."""

    def __call__(self, net):
        before = {k: (None if p.grad is None else p.grad.copy()) for k, p in net.named_params().items()}
        value, injections = super().__call__(net)
        for k, p in net.named_params().items():
            if p.grad is not None and before[k] is None:
                p.grad = 1.001 * p.grad
        return value, injections


@pytest.mark.parametrize("broken", [SkewedInjections, SkewedWeights])
def test_gradient_check_catches_a_wrong_penalty_gradient(broken):
    rng = numpy.random.default_rng(4)
    with minidnn.use_dtype("float64"):
        net = small_mlp([4, 5, 3], ("sigmoid",), rng)
    x = rng.standard_normal((3, 4))
    report = check_network(net, x, rng.integers(0, 3, 3), ZeroLoss(), penalties=[broken(net, 1.0)])
    assert not report.ok
    with pytest.raises(AssertionError, match="gradient check failed"):
        report.assert_ok()


# ---- parameter gradients only when asked ----------------------------------------------------------
def test_no_weight_gradients_inside_input_gradient_only():
    """Sequential.input_gradient_only promises ∂/∂x only: the penalty leaves W.grad alone there too."""
    rng = numpy.random.default_rng(0)
    with minidnn.use_dtype("float64"):
        net = small_mlp([4, 5, 3], ("sigmoid",), rng)
    x = rng.standard_normal((3, 4))
    penalty = LayerwiseContractive(net, 1.0)
    with net.input_gradient_only():
        _, _, gx = net.loss_and_backward(x, numpy.zeros(3, int), SoftmaxCrossEntropy(), penalties=[penalty])
    assert all(p.grad is None for p in net.named_params().values())
    net.loss_and_backward(x, numpy.zeros(3, int), SoftmaxCrossEntropy(), penalties=[penalty])
    assert all(p.grad is not None for p in net.named_params().values())


# ---- clear errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize("lams", [[1.0, 1.0], [1.0] * 4, []])
def test_wrong_number_of_lambdas_is_a_clear_error(lams):
    net = build_model("N100-100-10", rng=0)
    with pytest.raises(ValueError, match=r"λ values given for 3 blocks \(0:Dense\+relu, 2:Dense\+relu, "
                                         r"4:Dense\+softmax\)"):
        LayerwiseContractive(net, lams)


def test_lambdas_may_be_any_sequence():
    net = build_model("ConvNet", rng=0)
    assert LayerwiseContractive(net, numpy.array([1, 2, 3, 4])).lams == [1.0, 2.0, 3.0, 4.0]
    assert LayerwiseContractive(net, (0.1,) * 4).lams == [0.1] * 4
    assert LayerwiseContractive(net, numpy.float32(0.5)).lams == [0.5] * 4
