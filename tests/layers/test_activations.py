"""ReLU, Sigmoid, Tanh and Softmax: gradients, values, and numerical stability."""
import warnings

import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minidnn
from minidnn.gradcheck import check_layer
from minidnn.layers import ReLU, Sigmoid, Softmax, Tanh, log_softmax, softmax
from support.arrays import away_from_zero, seeds

shapes = st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple)


@given(shape=shapes, kind=st.sampled_from([ReLU, Sigmoid, Tanh]), scale=st.sampled_from([0.5, 3.0]), seed=seeds)
def test_elementwise_gradients_match_finite_differences(shape, kind, scale, seed):
    """Any shape (2-D activations and 4-D feature maps); ReLU inputs stay 0.1 away from its kink."""
    rng = numpy.random.default_rng(seed)
    x = scale * away_from_zero(rng, shape)
    x.flat[0] = abs(x.flat[0])                 # one ReLU unit passes, or the gradient is all zero
    with minidnn.use_dtype("float64"):
        check_layer(kind(), x, seed=seed).assert_ok()


@given(n=st.integers(1, 4), k=st.integers(2, 6), scale=st.sampled_from([0.5, 3.0]), seed=seeds)
def test_softmax_gradient_matches_finite_differences(n, k, scale, seed):
    with minidnn.use_dtype("float64"):
        check_layer(Softmax(), scale * numpy.random.default_rng(seed).standard_normal((n, k)), seed=seed).assert_ok()


def test_values():
    x = numpy.array([[-2.0, -0.5, 0.5, 2.0]])
    numpy.testing.assert_array_equal(ReLU().forward(x), [[0, 0, 0.5, 2.0]])
    numpy.testing.assert_allclose(Sigmoid().forward(x), 1 / (1 + numpy.exp(-x)), rtol=1e-14)
    numpy.testing.assert_allclose(Tanh().forward(x), numpy.tanh(x), rtol=1e-14)
    e = numpy.exp(x)
    numpy.testing.assert_allclose(Softmax().forward(x), e / e.sum(), rtol=1e-14)


def test_sigmoid_and_softmax_are_stable_for_huge_inputs():
    x = numpy.array([[-1e4, -50.0, 0.0, 50.0, 1e4]], dtype=numpy.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")              # no overflow warnings either
        y = Sigmoid().forward(x)
        p = softmax(x)
        logp = log_softmax(x)
    assert numpy.all((y >= 0) & (y <= 1)) and y[0, 0] == 0 and y[0, -1] == 1
    assert numpy.isfinite(p).all() and p[0, -1] == pytest.approx(1.0)
    assert numpy.isfinite(logp[0, 1:]).all() and logp[0, -1] == pytest.approx(0.0)


@given(n=st.integers(1, 4), k=st.integers(1, 6), shift=st.floats(-100, 100), seed=seeds)
def test_softmax_rows_sum_to_one_and_ignore_shifts(n, k, shift, seed):
    z = numpy.random.default_rng(seed).standard_normal((n, k))
    p = softmax(z)
    numpy.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-12)
    numpy.testing.assert_allclose(softmax(z + shift), p, rtol=1e-9, atol=1e-15)
    numpy.testing.assert_allclose(log_softmax(z), numpy.log(p), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", [ReLU, Sigmoid, Tanh, Softmax])
def test_float32_in_float32_out(kind):
    layer = kind()
    x = numpy.random.default_rng(0).standard_normal((3, 4)).astype(numpy.float32)
    y = layer.forward(x)
    assert y.dtype == numpy.float32 and layer.backward(numpy.ones_like(y)).dtype == numpy.float32
