"""Test-time noise injection: softmax averaged over exactly `passes` seeded noisy forward passes."""
import numpy
import pytest

from minidnn.layers import GaussianNoise, softmax
from minidnn.networks import build_model, mlp, noisy_predict_proba, with_noise


@pytest.fixture
def net_and_x():
    net = mlp([8, 8], "relu", n_in=12, n_out=4, rng=0)
    x = numpy.random.default_rng(1).random((5, 12)).astype(numpy.float32)
    return net, x


def test_sigma_zero_is_the_noiseless_prediction(net_and_x):
    net, x = net_and_x
    numpy.testing.assert_array_equal(noisy_predict_proba(net, x, 0.0, "all", rng=3), net.predict_proba(x))


def test_same_seed_same_answer_other_seed_other_noise(net_and_x):
    net, x = net_and_x
    a = noisy_predict_proba(net, x, 0.3, "input", rng=7)
    numpy.testing.assert_array_equal(a, noisy_predict_proba(net, x, 0.3, "input", rng=7))
    assert not numpy.allclose(a, noisy_predict_proba(net, x, 0.3, "input", rng=8))
    assert not numpy.allclose(a, net.predict_proba(x))


@pytest.mark.parametrize("where", ["input", "all"])
@pytest.mark.parametrize("passes", [1, 3, 20])
def test_averages_exactly_the_requested_number_of_passes(net_and_x, where, passes):
    net, x = net_and_x
    got = noisy_predict_proba(net, x, 0.2, where, passes=passes, rng=11)
    noisy = with_noise(net, 0.2, where, at_test=True, rng=11)      # the same draws, by hand
    by_hand = sum(softmax(noisy.forward(x)) for _ in range(passes)) / passes
    numpy.testing.assert_allclose(got, by_hand, rtol=1e-6)
    one_more = (by_hand * passes + softmax(noisy.forward(x))) / (passes + 1)
    assert not numpy.allclose(got, one_more, rtol=1e-6)


def test_lstar_noise_reaches_every_convnet_feature_map():
    noisy = with_noise(build_model("ConvNet", rng=0), 0.1, "all", at_test=True, rng=0)
    kinds = [type(l).__name__ for l in noisy.layers]
    # input, after each pooling stage (feature maps feeding the next weight layer) and the dense ReLU
    assert kinds.count("GaussianNoise") == 4
    assert kinds[0] == "GaussianNoise" and kinds[-1] == "Dense"


def test_noise_layers_already_in_the_network_are_replaced_not_added(net_and_x):
    """A network trained with noise gets the requested test-time noise only, not its own on top."""
    net, x = net_and_x
    trained_with_noise = with_noise(net, 0.5, "input", at_test=True, rng=0)
    assert any(isinstance(l, GaussianNoise) for l in trained_with_noise.layers)
    numpy.testing.assert_array_equal(noisy_predict_proba(trained_with_noise, x, 0.2, "input", rng=4),
                                     noisy_predict_proba(net, x, 0.2, "input", rng=4))
    numpy.testing.assert_array_equal(noisy_predict_proba(trained_with_noise, x, 0.0), net.predict_proba(x))


def test_passes_must_be_positive(net_and_x):
    net, x = net_and_x
    with pytest.raises(ValueError, match="passes"):
        noisy_predict_proba(net, x, 0.1, passes=0)
