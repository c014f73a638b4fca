"""AttackObjective (Eq. 1): value and gradient checked end to end by finite differences, in float64.

    f_n(x'_n) = c_n·‖x'_n − x_n‖² ± CE(net(x'_n), l_n),   ∇f_n = 2c_n·r_n ± J_netᵀ (softmax − onehot(l_n))

on networks where the input gradient passes through more than a plain MLP: an autoencoder
stacked in front of a small ConvNet (with the Reshape glue ``stack`` adds), and a ConvNet
whose first layer is a fixed 3×3 Gaussian blur.
"""
import numpy
import pytest

from minidnn import backend
from minidnn.attacks import AttackObjective
from minidnn.gradcheck import compare, numerical_gradient
from minidnn.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Softmax
from minidnn.networks import Sequential, autoencoder, stack

SIDE = 10                # 10×10 images keep the finite differences cheap (N·100 entries, 2 passes each)
N, K = 3, 5


def small_convnet(rng):
    """(1, 10, 10) → Conv 3×3×3 → ReLU → MaxPool 2 → Flatten → Dense 5: 8 → 4, 3·4·4 = 48 features."""
    return Sequential([Conv2D(1, 3, 3, rng=rng), ReLU(), MaxPool2D(2), Flatten(), Dense(48, K, rng=rng)],
                      (1, SIDE, SIDE), "small ConvNet")


def gaussian_kernel(size=3, sigma=0.8):
    """A normalised size×size Gaussian: weights sum to 1, so a constant image stays constant."""
    u = numpy.arange(size) - (size - 1) / 2
    g = numpy.exp(-u * u / (2 * sigma * sigma))
    k = numpy.outer(g, g)
    return k / k.sum()


def stacked_network(rng):
    """An autoencoder 100 → 12 → 100 in front of the ConvNet: flat input, Reshape glue to (1, 10, 10)."""
    return stack(autoencoder(SIDE * SIDE, 12, rng=rng), small_convnet(rng))


def blurred_network(rng):
    """The ConvNet behind a fixed Gaussian blur: Conv2D(1, 1, 3, padding=1) with W = the kernel, b = 0."""
    blur = Conv2D(1, 1, 3, padding=1, rng=rng)
    blur.params["W"].data = backend.as_array(gaussian_kernel()[None, None], dtype=numpy.float64)
    blur.params["b"].data = backend.as_array(numpy.zeros(1), dtype=numpy.float64)
    convnet = small_convnet(rng)
    return Sequential([blur] + convnet.layers, (1, SIDE, SIDE), "blur + small ConvNet")


NETWORKS = {"stacked AE + ConvNet": stacked_network, "Gaussian blur + ConvNet": blurred_network}


def problem(build, seed=0):
    """A float64 network, originals x0 in [0.1, 0.9], a point x' = x0 + r with r ≠ 0, labels, targets."""
    rng = numpy.random.default_rng(seed)
    with backend.use_dtype("float64"):
        net = build(rng)
    shape = (N,) + net.input_shape
    x0 = rng.uniform(0.1, 0.9, shape)
    x_adv = x0 + rng.uniform(-0.05, 0.05, shape)
    labels = rng.integers(0, K, N)
    targets = (labels + rng.integers(1, K, N)) % K
    return net, x0, x_adv, labels, targets


@pytest.mark.parametrize("per_example_c", [False, True], ids=["scalar c", "per-example c"])
@pytest.mark.parametrize("untargeted", [False, True], ids=["targeted", "untargeted"])
@pytest.mark.parametrize("name", list(NETWORKS))
def test_objective_gradient_matches_finite_differences(name, untargeted, per_example_c):
    net, x0, x_adv, labels, targets = problem(NETWORKS[name])
    c = numpy.array([0.3, 1.0, 2.5]) if per_example_c else 0.7
    aim = labels if untargeted else targets
    objective = AttackObjective(net, c, x0, aim, untargeted=untargeted)
    f, g, _ = objective(x_adv)
    assert f.shape == (N,) and g.shape == x_adv.shape
    # Every row depends on its own example only, so ∂(Σ_n f_n)/∂x' holds each example's gradient.
    numeric = numerical_gradient(lambda: objective(x_adv)[0].sum(), x_adv, eps=1e-6)
    entry = compare(f"∇f ({name})", g, numeric, rtol=1e-5, atol=1e-8)
    assert entry.ok, f"{entry}"
    assert entry.max_abs_grad > 1e-3          # a vanishing gradient would prove nothing


@pytest.mark.parametrize("untargeted", [False, True], ids=["targeted", "untargeted"])
def test_objective_value_is_c_r_squared_plus_or_minus_cross_entropy(untargeted):
    net, x0, x_adv, labels, targets = problem(stacked_network, seed=1)
    c = numpy.array([0.5, 1.5, 4.0])
    aim = labels if untargeted else targets
    f, _, logits = AttackObjective(net, c, x0, aim, untargeted=untargeted)(x_adv)
    z = backend.to_numpy(net.predict_logits(x_adv))
    numpy.testing.assert_allclose(logits, z, rtol=1e-12)
    log_p = z - z.max(axis=1, keepdims=True)
    log_p -= numpy.log(numpy.exp(log_p).sum(axis=1, keepdims=True))
    ce = -log_p[numpy.arange(N), aim]
    r2 = ((x_adv - x0) ** 2).reshape(N, -1).sum(axis=1)
    numpy.testing.assert_allclose(f, c * r2 + (-ce if untargeted else ce), rtol=1e-12)


def test_rows_select_examples_and_their_constants():
    """objective(x'[rows], rows) is the full objective's rows (minimal mode and compaction rely on it)."""
    net, x0, x_adv, _, targets = problem(blurred_network, seed=2)
    objective = AttackObjective(net, numpy.array([0.2, 1.0, 3.0]), x0, targets)
    f_all, g_all, z_all = objective(x_adv)
    rows = numpy.array([2, 0])
    f, g, z = objective(x_adv[rows], rows)
    numpy.testing.assert_allclose(f, f_all[rows], rtol=1e-12)
    numpy.testing.assert_allclose(g, g_all[rows], rtol=1e-12, atol=1e-15)
    numpy.testing.assert_allclose(z, z_all[rows], rtol=1e-12)


def test_trailing_softmax_layer_is_fused_into_the_cross_entropy():
    """A network ending in Softmax gives the same objective as its logits network (log-softmax, no clipping)."""
    net, x0, x_adv, _, targets = problem(stacked_network, seed=3)
    with_softmax = Sequential(net.layers + [Softmax()], net.input_shape)
    a = AttackObjective(net, 0.7, x0, targets)(x_adv)
    b = AttackObjective(with_softmax, 0.7, x0, targets)(x_adv)
    for u, v in zip(a, b):
        numpy.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-15)


def test_gradient_check_catches_a_wrong_gradient():
    """Negative control: the same check fails when the c·‖r‖² term's gradient is off by a factor."""
    net, x0, x_adv, _, targets = problem(stacked_network, seed=4)
    objective = AttackObjective(net, 0.7, x0, targets)
    _, g, _ = objective(x_adv)
    wrong = g - 0.7 * (x_adv - x0)                # c·r instead of 2c·r
    numeric = numerical_gradient(lambda: objective(x_adv)[0].sum(), x_adv, eps=1e-6)
    assert not compare("wrong ∇f", wrong, numeric, rtol=1e-5, atol=1e-8).ok
