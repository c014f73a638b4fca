"""Losses: gradients by finite differences (both reductions), values against plain formulas, stability."""
import warnings

import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidnn.gradcheck import check_loss
from minidnn.losses import LOSSES, BinaryCrossEntropy, MeanSquaredError, SoftmaxCrossEntropy
from support.arrays import seeds

reductions = st.sampled_from(["mean", "sum"])
scales = st.sampled_from([0.5, 4.0])


def cross_entropy_reference(z, t):
    """−Σ_n log(e^{z_n,t_n} / Σ_k e^{z_n,k}) with an explicit log-sum-exp per row."""
    total = 0.0
    for row, label in zip(z, t):
        m = max(row)
        total -= row[label] - (m + numpy.log(sum(numpy.exp(v - m) for v in row)))
    return total


@given(n=st.integers(1, 5), k=st.integers(2, 6), reduction=reductions, scale=scales, seed=seeds)
def test_softmax_cross_entropy(n, k, reduction, scale, seed):
    rng = numpy.random.default_rng(seed)
    z, t = scale * rng.standard_normal((n, k)), rng.integers(0, k, n)
    loss = SoftmaxCrossEntropy(reduction)
    want = cross_entropy_reference(z, t) / (n if reduction == "mean" else 1)
    assert float(loss.forward(z, t)) == pytest.approx(want, rel=1e-12)
    check_loss(SoftmaxCrossEntropy(reduction), z, t).assert_ok()


@given(shape=st.sampled_from([(1, 1), (3, 4), (2, 2, 3)]), reduction=reductions, scale=scales, seed=seeds)
def test_binary_cross_entropy(shape, reduction, scale, seed):
    rng = numpy.random.default_rng(seed)
    z, t = scale * rng.standard_normal(shape), rng.uniform(size=shape)
    p = 1 / (1 + numpy.exp(-z))
    want = -(t * numpy.log(p) + (1 - t) * numpy.log(1 - p)).sum() / (shape[0] if reduction == "mean" else 1)
    assert float(BinaryCrossEntropy(reduction).forward(z, t)) == pytest.approx(want, rel=1e-10)
    check_loss(BinaryCrossEntropy(reduction), z, t).assert_ok()


@given(shape=st.sampled_from([(1, 1), (3, 4), (2, 2, 3)]), reduction=reductions, seed=seeds)
def test_mean_squared_error(shape, reduction, seed):
    rng = numpy.random.default_rng(seed)
    y, t = rng.standard_normal(shape), rng.uniform(size=shape)
    want = 0.5 * ((y - t) ** 2).sum() / (shape[0] if reduction == "mean" else 1)
    assert float(MeanSquaredError(reduction).forward(y, t)) == pytest.approx(want, rel=1e-12)
    check_loss(MeanSquaredError(reduction), y, t).assert_ok()


@pytest.mark.parametrize("kind", [SoftmaxCrossEntropy, BinaryCrossEntropy, MeanSquaredError])
def test_sum_is_n_times_mean(kind):
    rng = numpy.random.default_rng(0)
    z = rng.standard_normal((5, 3))
    t = rng.integers(0, 3, 5) if kind is SoftmaxCrossEntropy else rng.uniform(size=(5, 3))
    mean, total = kind("mean"), kind("sum")
    assert float(total.forward(z, t)) == pytest.approx(5 * float(mean.forward(z, t)), rel=1e-12)
    numpy.testing.assert_allclose(total.backward(), 5 * mean.backward(), rtol=1e-12)


def test_huge_logits_stay_finite():
    z = numpy.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], dtype=numpy.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ce = SoftmaxCrossEntropy()
        assert float(ce.forward(z, numpy.array([1, 0]))) == pytest.approx(2e4, rel=1e-6)
        assert numpy.isfinite(ce.backward()).all()
        bce = BinaryCrossEntropy()
        value = float(bce.forward(z, numpy.array([[0.0, 1.0, 0.5], [1.0, 0.0, 0.5]], dtype=numpy.float32)))
        assert numpy.isfinite(value) and numpy.isfinite(bce.backward()).all()


@pytest.mark.parametrize("kind", [SoftmaxCrossEntropy, BinaryCrossEntropy, MeanSquaredError])
def test_float32_stays_float32(kind):
    rng = numpy.random.default_rng(0)
    z = rng.standard_normal((4, 3)).astype(numpy.float32)
    t = rng.integers(0, 3, 4) if kind is SoftmaxCrossEntropy else rng.uniform(size=(4, 3)).astype(numpy.float32)
    loss = kind()
    assert loss.forward(z, t).dtype == numpy.float32 and loss.backward().dtype == numpy.float32


def test_bad_targets_and_reductions_are_named():
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\)"):
        SoftmaxCrossEntropy().forward(numpy.zeros((3, 2)), numpy.zeros((3, 2), int))
    with pytest.raises(ValueError, match="differ in shape"):
        BinaryCrossEntropy().forward(numpy.zeros((3, 2)), numpy.zeros((3, 3)))
    with pytest.raises(ValueError, match="differ in shape"):
        MeanSquaredError().forward(numpy.zeros((3, 2)), numpy.zeros((2, 2)))
    with pytest.raises(ValueError, match="'median'"):
        MeanSquaredError("median")


def test_fusion_and_registry():
    assert SoftmaxCrossEntropy.fuses_with == "Softmax" and BinaryCrossEntropy.fuses_with == "Sigmoid"
    assert MeanSquaredError.fuses_with is None
    assert LOSSES == {"cross_entropy": SoftmaxCrossEntropy, "binary_cross_entropy": BinaryCrossEntropy,
                      "mse": MeanSquaredError}
