"""The gradient checker itself: it must pass right gradients and fail wrong ones, naming the array."""
import numpy
import pytest

import minidnn
from minidnn.gradcheck import EPS, check_layer, check_loss, check_network, compare, numerical_gradient
from minidnn.layers import Dense, ReLU
from minidnn.losses import MeanSquaredError, SoftmaxCrossEntropy
from minidnn.networks import Sequential


class DenseWithoutBiasGradient(Dense):
    def backward(self, gy):
        gx = super().backward(gy)
        self.params["b"].grad = 0 * self.params["b"].grad
        return gx


class DenseWithScaledInputGradient(Dense):
    def backward(self, gy):
        return 1.01 * super().backward(gy)


class DenseWithTransposedWeightGradient(Dense):
    """Square W: the transposed gradient has the right shape and the wrong values."""

    def backward(self, gy):
        gx = super().backward(gy)
        self.params["W"].grad = self.params["W"].grad.T.copy()
        return gx


class MSEWithHalfGradient(MeanSquaredError):
    def backward(self):
        return 0.5 * super().backward()


def data(*shape, seed=0):
    return numpy.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("kind, culprit", [(DenseWithoutBiasGradient, "b"), (DenseWithScaledInputGradient, "x"),
                                           (DenseWithTransposedWeightGradient, "W")])
def test_a_wrong_layer_backward_fails_and_is_named(kind, culprit):
    with minidnn.use_dtype("float64"):
        layer = kind(4, 4, rng=0)
        layer.params["b"].data += 1.0
        report = check_layer(layer, data(3, 4, seed=5))      # not gy's seed: x = gy makes xᵀgy symmetric
    assert not report.ok and report.worst.name == culprit
    failing = [e.name for e in report.entries if not e.ok]
    assert failing == [culprit]
    with pytest.raises(AssertionError, match=rf"gradient check failed at {culprit}\["):
        report.assert_ok()
    assert "<-- FAIL" in report.table()


def test_the_right_backward_passes_and_the_report_tells_the_worst_entry():
    with minidnn.use_dtype("float64"):
        report = check_layer(Dense(4, 3, rng=0), data(2, 4))
    assert report.assert_ok() is report
    assert [e.name for e in report.entries] == ["x", "W", "b"]
    assert report.worst.rel_error < 1e-6 and "worst rel. err" in report.table()


def test_a_wrong_loss_backward_fails():
    report = check_loss(MSEWithHalfGradient(), data(3, 2), data(3, 2, seed=1))
    with pytest.raises(AssertionError, match=r"gradient check failed at output\["):
        report.assert_ok()


def test_a_wrong_layer_inside_a_network_fails_and_is_named():
    with minidnn.use_dtype("float64"):
        net = Sequential([Dense(3, 4, rng=0), DenseWithoutBiasGradient(4, 2, rng=1)], (3,))
        net.layers[1].params["b"].data += 0.5
        report = check_network(net, data(5, 3), numpy.array([0, 1, 1, 0, 1]), SoftmaxCrossEntropy())
    assert [e.name for e in report.entries if not e.ok] == ["1.b"]
    with pytest.raises(AssertionError, match=r"1\.b"):
        report.assert_ok()


def test_an_all_zero_gradient_proves_nothing():
    with minidnn.use_dtype("float64"):
        report = check_layer(ReLU(), -1.0 - numpy.abs(data(2, 3)))        # every input on the flat side
    assert report.ok
    with pytest.raises(AssertionError, match=r"identically zero for \['x'\]"):
        report.assert_ok()
    report.assert_ok(nonzero=False)


def test_float32_is_refused_with_advice():
    with pytest.raises(TypeError, match="use_dtype"):
        check_layer(Dense(2, 2), data(1, 2).astype(numpy.float32))


def test_numerical_gradient_of_a_polynomial_and_the_array_is_restored():
    x = data(2, 3)
    before = x.copy()
    g = numerical_gradient(lambda: (x ** 3).sum(), x)
    numpy.testing.assert_allclose(g, 3 * before ** 2 + EPS ** 2, rtol=1e-8)   # central differences of x³
    numpy.testing.assert_array_equal(x, before)


def test_compare_applies_the_documented_criterion():
    a = numpy.array([1.0, 1e-12, -2.0])
    assert compare("a", a, a * (1 + 0.9e-6)).ok                      # within rtol
    assert not compare("a", a, a + numpy.array([0, 0, 1e-5])).ok        # 5e-6 relative: too far
    assert compare("a", numpy.array([0.0]), numpy.array([0.9e-9])).ok   # within atol
    worst = compare("a", a, numpy.array([1.0, 1e-12, -2.1]))
    assert not worst.ok and worst.index == (2,) and worst.analytic == -2.0 and worst.numeric == -2.1
    with pytest.raises(ValueError, match="shape"):
        compare("a", a, a[:2])
