"""GaussianBlur: a direct 2-D convolution with the normalised Gaussian kernel, borders included."""
import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minidnn
from minidnn.gradcheck import check_layer
from minidnn.layers import GaussianBlur
from minidnn.layers.blur import default_sigma, gaussian_kernel_1d
from minidnn.networks import blurred, build_model, mlp
from support.arrays import seeds


def direct_blur(x, kernel):
    """y[n,c,i,j] = Σ_{a,b} K[a,b] x[n,c,i+a−r,j+b−r], zero outside the image: one loop per offset."""
    r = kernel.shape[0] // 2
    N, C, H, W = x.shape
    padded = numpy.zeros((N, C, H + 2 * r, W + 2 * r))
    padded[:, :, r:r + H, r:r + W] = x
    y = numpy.zeros(x.shape)
    for a in range(kernel.shape[0]):
        for b in range(kernel.shape[1]):
            y += kernel[a, b] * padded[:, :, a:a + H, b:b + W]
    return y


def two_d_kernel(size, sigma):
    """K[a,b] ∝ exp(−((a−r)² + (b−r)²)/2σ²), normalised: built in 2-D, not as an outer product."""
    r = size // 2
    a, b = numpy.mgrid[0:size, 0:size]
    K = numpy.exp(-((a - r) ** 2 + (b - r) ** 2) / (2 * sigma ** 2))
    return K / K.sum()


case = st.tuples(st.integers(1, 3), st.integers(1, 2), st.integers(1, 12), st.integers(1, 12),
                 st.sampled_from([1, 3, 5, 7, 11]), st.sampled_from([None, 0.5, 1.0, 2.5]), seeds)


@given(case)
def test_equals_a_direct_convolution_with_the_normalised_kernel(c):
    n, ch, h, w, size, sigma, seed = c
    layer = GaussianBlur(size, sigma)
    x = numpy.random.default_rng(seed).random((n, ch, h, w))
    with minidnn.use_dtype("float64"):
        y = layer.forward(x)
    K = two_d_kernel(size, layer.sigma)
    numpy.testing.assert_allclose(y, direct_blur(x, K), rtol=1e-12, atol=1e-14)


@given(case)
def test_backward_passes_a_finite_difference_check(c):
    n, ch, h, w, size, sigma, seed = c
    x = numpy.random.default_rng(seed).random((n, ch, h, w))
    with minidnn.use_dtype("float64"):
        check_layer(GaussianBlur(size, sigma), x, seed=seed).assert_ok()


def test_kernel_sums_to_one_and_the_default_sigma_follows_the_stated_rule():
    assert default_sigma(5) == pytest.approx(1.1) and default_sigma(11) == pytest.approx(2.0)
    for size in (1, 5, 11):
        assert GaussianBlur(size).kernel().sum() == pytest.approx(1.0)
    assert gaussian_kernel_1d(1, 0.5).tolist() == [1.0]


def test_size_one_is_the_identity_and_a_constant_interior_is_unchanged():
    x = numpy.random.default_rng(0).random((2, 1, 9, 9)).astype(numpy.float32)
    numpy.testing.assert_array_equal(GaussianBlur(1).forward(x), x)
    ones = numpy.ones((1, 1, 15, 15))
    y = GaussianBlur(5, 1.0).forward(ones)
    numpy.testing.assert_allclose(y[0, 0, 2:-2, 2:-2], 1.0, rtol=1e-12)
    assert y[0, 0, 0, 0] < 1.0          # zero padding darkens the border


@pytest.mark.parametrize("bad", [0, 2, -3])
def test_even_or_nonpositive_sizes_are_refused(bad):
    with pytest.raises(ValueError, match="size"):
        GaussianBlur(bad)


def test_rejects_flat_input_with_a_clear_message():
    with pytest.raises(ValueError, match="GaussianBlur expects"):
        GaussianBlur(5).forward(numpy.zeros((2, 784)))


def test_blurred_network_classifies_blurred_images_and_checks_end_to_end():
    net = mlp([6], "sigmoid", n_in=36, n_out=3, rng=0)
    b = blurred(net, 5, 1.0, image_shape=(1, 6, 6))
    x = numpy.random.default_rng(1).random((4, 36))
    with minidnn.use_dtype("float64"):
        b.astype("float64"), net.astype("float64")
        by_hand = net.predict_logits(direct_blur(x.reshape(4, 1, 6, 6), two_d_kernel(5, 1.0)).reshape(4, 36))
        numpy.testing.assert_allclose(b.predict_logits(x), by_hand, rtol=1e-12)
        from minidnn.gradcheck import check_network
        from minidnn.losses import SoftmaxCrossEntropy
        check_network(b, x, numpy.array([0, 1, 2, 0]), SoftmaxCrossEntropy()).assert_ok()


def test_blurred_convnet_keeps_image_inputs_and_round_trips_through_a_spec():
    convnet = build_model("ConvNet", rng=0)
    net = blurred(convnet, 11)
    assert tuple(net.input_shape) == (1, 28, 28)
    x = numpy.random.default_rng(4).random((3, 1, 28, 28)).astype(numpy.float32)
    by_hand = convnet.predict_logits(direct_blur(x, two_d_kernel(11, 2.0)).astype(numpy.float32))
    numpy.testing.assert_allclose(net.predict_logits(x), by_hand, rtol=1e-4, atol=1e-5)
    again = type(net).from_spec(net.spec())
    assert isinstance(again.layers[0], GaussianBlur) and again.layers[0].sigma == pytest.approx(2.0)
