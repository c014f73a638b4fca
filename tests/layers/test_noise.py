"""GaussianNoise: y = x + ε in training (and at test time if asked), identity otherwise."""
import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minidnn
from minidnn.gradcheck import check_layer
from minidnn.layers import GaussianNoise
from support.arrays import seeds


class FrozenNoise(GaussianNoise):
    """Draws the same ε on every forward (its generator is rewound first), so that finite
    differences see one fixed function x ↦ x + ε."""

    def __init__(self, sigma, **kwargs):
        super().__init__(sigma, **kwargs)
        self.start = self.state()

    def forward(self, x, train=False):
        self.load_state(self.start)
        return super().forward(x, train)


shapes = st.lists(st.integers(1, 3), min_size=2, max_size=4).map(tuple)     # ≤ 81 entries: rounding ≪ atol


@given(shape=shapes, sigma=st.sampled_from([0.1, 1.0]), seed=seeds)
def test_train_mode_gradient_with_a_fixed_noise_draw(shape, sigma, seed):
    layer = FrozenNoise(sigma, rng=seed)
    x = numpy.random.default_rng(seed).standard_normal(shape)
    assert not numpy.array_equal(layer.forward(x, train=True), x)      # noise really is added
    with minidnn.use_dtype("float64"):
        check_layer(layer, x, train=True, seed=seed).assert_ok()


@given(shape=shapes, seed=seeds)
def test_eval_mode_is_the_identity(shape, seed):
    layer = GaussianNoise(0.5, rng=seed)
    x = numpy.random.default_rng(seed).standard_normal(shape)
    numpy.testing.assert_array_equal(layer.forward(x), x)
    with minidnn.use_dtype("float64"):
        check_layer(layer, x, train=False, seed=seed).assert_ok()


def test_noise_statistics_and_dtype():
    layer = GaussianNoise(0.3, rng=1)
    x = numpy.zeros((200, 50), numpy.float32)
    eps = layer.forward(x, train=True)
    assert eps.dtype == numpy.float32
    assert abs(eps.mean()) < 0.01 and abs(eps.std() - 0.3) < 0.01


def test_noise_at_test_time_only_when_asked():
    x = numpy.zeros((4, 3))
    assert not numpy.array_equal(GaussianNoise(0.5, at_test=True).forward(x, train=False), x)
    numpy.testing.assert_array_equal(GaussianNoise(0.0).forward(x, train=True), x)
    with pytest.raises(ValueError, match="sigma"):
        GaussianNoise(-0.1)


def test_state_replays_the_same_noise():
    layer = GaussianNoise(1.0, rng=7)
    x = numpy.zeros((3, 5))
    layer.forward(x, train=True)
    saved = layer.state()
    first = layer.forward(x, train=True)
    other = GaussianNoise(1.0, rng=123)
    other.load_state(saved)
    numpy.testing.assert_array_equal(other.forward(x, train=True), first)
    assert not numpy.array_equal(layer.forward(x, train=True), first)
    assert layer.spec() == {"type": "GaussianNoise", "sigma": 1.0, "at_test": False}
