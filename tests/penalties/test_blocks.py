"""Each block's closed-form ‖∂h_j/∂h_{j−1}‖_F² (minidnn.penalties.layer_norms / block_penalty) against
the explicit Jacobian, built by brute force: central differences of the block's forward pass (and, for
a few, one backward pass per output unit). Also which layers are blocks, and why pooling is not one.
"""
import numpy
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import minidnn
from minidnn.layers import Conv2D, Dense, Flatten, MaxPool2D, Reshape, Sigmoid, Softmax, Tanh
from minidnn.layers.activations import softmax
from minidnn.networks import Sequential, build_model, with_noise
from minidnn.penalties import block_penalty, find_blocks, layer_norms

from . import (ACTIVATIONS, backward_jacobian, fd_jacobian, frobenius2,  # noqa: F401
               randomize, relu_margin)

seeds = st.integers(0, 2**32 - 1)
RTOL = 1e-6


def block_function(net, block):
    """h_{j−1} ↦ h_j for one block, from its own layers (the reference never calls the penalty code)."""
    layer = block.layer

    def f(h):
        a = layer.forward(h)
        if block.activation == "softmax":
            return softmax(a)
        if block.activation == "linear":
            return a
        return ACTIVATIONS[block.activation]().forward(a)
    return f


def block_inputs(net, x):
    """{layer index: the input h_{j−1} that layer sees}, evaluation mode."""
    inputs, h = {}, x
    for i, layer in enumerate(net.layers):
        inputs[i] = h
        h = layer.forward(h)
    return inputs


def assert_blocks_match_brute_force(net, x):
    """layer_norms(net, x) equals ‖J‖_F² of every block's finite-difference Jacobian."""
    closed = layer_norms(net, x)
    inputs = block_inputs(net, x)
    blocks = find_blocks(net)
    assert list(closed) == [b.describe() for b in blocks]
    for block in blocks:
        brute = frobenius2(fd_jacobian(block_function(net, block), inputs[block.index]))
        numpy.testing.assert_allclose(closed[block.describe()], brute, rtol=RTOL, atol=1e-12,
                                      err_msg=f"block {block.describe()}")
    return closed


# ---- dense blocks, one activation at a time ----------------------------------------------------
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "linear", "softmax", "softmax-layer"])
@given(seed=seeds, n_in=st.integers(1, 6), n_out=st.integers(1, 5), n=st.integers(1, 3))
def test_dense_block_equals_explicit_jacobian(activation, seed, n_in, n_out, n):
    rng = numpy.random.default_rng(seed)
    with minidnn.use_dtype("float64"):
        layers = [Dense(n_in, n_out, rng=rng)]
        if activation in ACTIVATIONS:
            layers.append(ACTIVATIONS[activation]())
        elif activation == "linear":          # a Dense followed by another Dense: h = a
            layers.append(Dense(n_out, 2, rng=rng))
        elif activation == "softmax-layer":   # an explicit Softmax layer instead of logits
            layers.append(Softmax())
        net = randomize(Sequential(layers, (n_in,)), rng, scale=2.0)
    x = rng.standard_normal((n, n_in))
    if activation == "relu":
        assume(relu_margin(net, x) > 1e-3)
    kind = {"softmax-layer": "softmax"}.get(activation, activation)
    blocks = find_blocks(net)
    assert blocks[0].activation == kind and blocks[0].index == 0
    closed = assert_blocks_match_brute_force(net, x)
    assert all(numpy.all(v >= 0) for v in closed.values())


def test_closed_forms_written_out():
    """The element-wise block is Σ_k d_k² ‖W_:k‖²; the softmax block tr(M² WᵀW), M = diag y − y yᵀ."""
    rng = numpy.random.default_rng(3)
    with minidnn.use_dtype("float64"):
        net = randomize(Sequential([Dense(4, 3, rng=rng), Tanh(), Dense(3, 5, rng=rng)], (4,)), rng)
    x = rng.standard_normal((6, 4))
    norms = layer_norms(net, x)
    W1, b1, W2, b2 = (net.layers[i].params[k].data for i in (0, 2) for k in ("W", "b"))
    d = 1 - numpy.tanh(x @ W1 + b1) ** 2
    numpy.testing.assert_allclose(norms["0:Dense+tanh"], (d * d) @ (W1 * W1).sum(axis=0), rtol=1e-12)
    y = softmax(numpy.tanh(x @ W1 + b1) @ W2 + b2)
    M = numpy.stack([numpy.diag(v) - numpy.outer(v, v) for v in y])
    numpy.testing.assert_allclose(norms["2:Dense+softmax"],
                                  [numpy.trace(m @ m @ W2.T @ W2) for m in M], rtol=1e-12)


def test_brute_force_references_agree():
    """The two references (finite differences, one backward pass per output) agree with each other."""
    rng = numpy.random.default_rng(0)
    with minidnn.use_dtype("float64"):
        layers = [Conv2D(2, 3, (2, 3), stride=(2, 1), padding=(1, 2), rng=rng), Sigmoid()]
        randomize(Sequential(layers, (2, 5, 4)), rng)
    x = rng.standard_normal((2, 2, 5, 4))

    def f(h):
        for layer in layers:
            h = layer.forward(h)
        return h
    numpy.testing.assert_allclose(fd_jacobian(f, x), backward_jacobian(layers, x), rtol=1e-6, atol=1e-9)


# ---- convolution blocks: shapes, non-square kernels, strides ≠ kernel, paddings (exact borders) --
@st.composite
def conv_geometry(draw):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, kernel[0])), draw(st.integers(0, kernel[1])))
    h = draw(st.integers(max(1, kernel[0] - 2 * padding[0]), kernel[0] + 4))
    w = draw(st.integers(max(1, kernel[1] - 2 * padding[1]), kernel[1] + 4))
    n, c, f = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return dict(kernel=kernel, stride=stride, padding=padding, shape=(n, c, h, w), filters=f)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "linear"])
@given(geometry=conv_geometry(), seed=seeds)
def test_conv_block_equals_explicit_jacobian(activation, geometry, seed):
    rng = numpy.random.default_rng(seed)
    n, c, h, w = geometry["shape"]
    with minidnn.use_dtype("float64"):
        conv = Conv2D(c, geometry["filters"], geometry["kernel"], geometry["stride"], geometry["padding"], rng=rng)
        layers = [conv]
        if activation in ACTIVATIONS:
            layers.append(ACTIVATIONS[activation]())
        else:                                  # a convolution feeding max pooling: a linear block
            layers.append(MaxPool2D(1))
        net = randomize(Sequential(layers, (c, h, w)), rng, scale=2.0)
    x = rng.standard_normal((n, c, h, w))
    if activation == "relu":
        assume(relu_margin(net, x) > 1e-3)
    blocks = find_blocks(net)
    assert [(b.index, b.activation) for b in blocks] == [(0, activation)]
    assert_blocks_match_brute_force(net, x)


def test_conv_border_windows_count_only_pixels_inside():
    """All-ones kernels, linear block: each output's row of J has one entry per kernel tap inside the
    image, so ‖J‖² counts (taps inside) · C over the outputs; padding taps contribute nothing."""
    with minidnn.use_dtype("float64"):
        conv = Conv2D(2, 1, (3, 2), stride=(2, 3), padding=(2, 1))
        conv.params["W"].data[...] = 1.0
        net = Sequential([conv, MaxPool2D(1)], (2, 4, 5))
    x = numpy.zeros((1, 2, 4, 5))
    expected = 0
    oh, ow = (4 + 4 - 3) // 2 + 1, (5 + 2 - 2) // 3 + 1
    for i in range(oh):
        for j in range(ow):
            rows = [2 * i + a - 2 for a in range(3) if 0 <= 2 * i + a - 2 < 4]
            cols = [3 * j + b - 1 for b in range(2) if 0 <= 3 * j + b - 1 < 5]
            expected += 2 * len(rows) * len(cols)
    assert layer_norms(net, x)["0:Conv2D+linear"][0] == pytest.approx(expected)


# ---- blocks inside whole networks --------------------------------------------------------------
def small_convnet(rng, act1="relu", act2="sigmoid"):
    with minidnn.use_dtype("float64"):
        net = Sequential([Conv2D(1, 2, (3, 2), stride=(1, 2), padding=(1, 0), rng=rng), ACTIVATIONS[act1](),
                          MaxPool2D((2, 2), stride=(1, 1)),
                          Conv2D(2, 2, 2, stride=1, padding=1, rng=rng), ACTIVATIONS[act2](),
                          Flatten(), Dense(2 * 6 * 3, 5, rng=rng), Tanh(), Dense(5, 3, rng=rng)], (1, 6, 7))
    return randomize(net, rng, scale=1.5)


def test_every_block_of_a_convnet_equals_explicit_jacobian():
    rng = numpy.random.default_rng(11)
    net = small_convnet(rng)
    x = rng.standard_normal((2, 1, 6, 7))
    assert relu_margin(net, x) > 1e-3
    closed = assert_blocks_match_brute_force(net, x)
    assert list(closed) == ["0:Conv2D+relu", "3:Conv2D+sigmoid", "6:Dense+tanh", "8:Dense+softmax"]


def test_block_penalty_without_gradients_touches_nothing():
    rng = numpy.random.default_rng(2)
    net = small_convnet(rng)
    net.forward(rng.standard_normal((2, 1, 6, 7)))
    for block in find_blocks(net):
        norms, injection = block_penalty(block, grads=False)
        assert injection is None and norms.shape == (2,)
    assert all(p.grad is None for p in net.named_params().values())


# ---- max pooling and flatten are not blocks ------------------------------------------------------
def test_find_blocks_skips_pooling_flatten_and_noise():
    net = build_model("ConvNet", rng=0)
    blocks = find_blocks(net)
    assert [b.describe() for b in blocks] == ["0:Conv2D+relu", "3:Conv2D+relu", "7:Dense+relu", "9:Dense+softmax"]
    assert all(isinstance(b.layer, (Dense, Conv2D)) for b in blocks)
    noisy = with_noise(net, 0.1, "all")
    assert [b.layer for b in find_blocks(noisy)] == [b.layer for b in blocks]   # same layers, shifted indices
    mlp = build_model("N100-100-10", rng=0)
    assert [b.describe() for b in find_blocks(mlp)] == ["0:Dense+relu", "2:Dense+relu", "4:Dense+softmax"]


@given(seed=seeds, kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       stride=st.tuples(st.integers(1, 3), st.integers(1, 3)), data=st.data())
def test_max_pooling_jacobian_norm_is_the_number_of_outputs(seed, kernel, stride, data):
    """Each output copies one input (no ties): its row of J is one 1, so ‖J‖² = C·OH·OW whatever the
    input and there is no parameter: a constant that adds nothing to any gradient. Overlapping
    windows (stride < kernel) and −∞ padding included."""
    padding = (data.draw(st.integers(0, kernel[0] - 1)), data.draw(st.integers(0, kernel[1] - 1)))
    h = data.draw(st.integers(max(1, kernel[0] - 2 * padding[0]), kernel[0] + 3))
    w = data.draw(st.integers(max(1, kernel[1] - 2 * padding[1]), kernel[1] + 3))
    rng = numpy.random.default_rng(seed)
    n, c = 2, 2
    x = (rng.permutation(n * c * h * w).reshape(n, c, h, w) - n * c * h * w / 2) * 0.1   # distinct values
    pool = MaxPool2D(kernel, stride, padding)
    y = pool.forward(x)
    outputs = y[0].size
    brute = frobenius2(fd_jacobian(pool.forward, x, eps=1e-4))
    numpy.testing.assert_allclose(brute, outputs, rtol=1e-9)
    numpy.testing.assert_allclose(frobenius2(backward_jacobian([pool], x)), outputs, rtol=0)


@pytest.mark.parametrize("layer", [Flatten(), Reshape((3, 4))])
def test_flatten_and_reshape_jacobian_norm_is_the_number_of_outputs(layer):
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((3, 2, 6))
    numpy.testing.assert_allclose(frobenius2(fd_jacobian(layer.forward, x, eps=1e-3)), 12, rtol=1e-9)
