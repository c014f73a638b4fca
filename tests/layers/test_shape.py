"""Flatten and Reshape: shape bookkeeping, and a backward that undoes the forward."""
import math

import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minidnn
from minidnn.gradcheck import check_layer
from minidnn.layers import Flatten, Reshape
from support.arrays import seeds

example_shapes = st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple)


@given(n=st.integers(1, 3), shape=example_shapes, seed=seeds)
def test_flatten_gradient_and_shapes(n, shape, seed):
    x = numpy.random.default_rng(seed).standard_normal((n,) + shape)
    layer = Flatten()
    assert layer.forward(x).shape == (n, math.prod(shape)) == (n,) + layer.output_shape(shape)
    with minidnn.use_dtype("float64"):
        check_layer(layer, x, seed=seed).assert_ok()


@given(n=st.integers(1, 3), shape=example_shapes, seed=seeds, data=st.data())
def test_reshape_gradient_and_shapes(n, shape, seed, data):
    size = math.prod(shape)
    head = data.draw(st.sampled_from([d for d in range(1, size + 1) if size % d == 0]))
    target = (head, size // head)
    x = numpy.random.default_rng(seed).standard_normal((n,) + shape)
    layer = Reshape(target)
    assert layer.forward(x).shape == (n,) + target and layer.output_shape(shape) == target
    with minidnn.use_dtype("float64"):
        check_layer(layer, x, seed=seed).assert_ok()


def test_reshape_of_the_wrong_size_is_refused():
    with pytest.raises(ValueError, match="cannot reshape"):
        Reshape((2, 3)).output_shape((5,))
    assert Reshape([1, 28, 28]).spec() == {"type": "Reshape", "shape": [1, 28, 28]}
