"""Parameters, specs, the layer registry, and moving parameters between dtypes."""
import numpy
import pytest

from minidnn.layers import (LAYER_TYPES, Conv2D, Dense, Flatten, GaussianBlur, GaussianNoise, Layer, MaxPool2D,
                            Parameter, ReLU, Reshape, Sigmoid, Softmax, Tanh, layer_from_spec, register_layer)


def test_parameter_accumulates_and_zeroes():
    p = Parameter(numpy.zeros(3))
    p.accumulate(numpy.ones(3))
    p.accumulate(numpy.full(3, 2.0))
    numpy.testing.assert_array_equal(p.grad, [3, 3, 3])
    p.zero_grad()
    assert p.grad is None and p.shape == (3,)


EXAMPLES = [Dense(3, 2, init="he"), Conv2D(2, 3, (3, 1), stride=(1, 2), padding=(1, 0)), MaxPool2D((2, 3), 1, (1, 0)),
            Flatten(), Reshape((2, 3)), ReLU(), Sigmoid(), Tanh(), Softmax(), GaussianNoise(0.2, at_test=True),
            GaussianBlur(5, 0.7)]


def test_every_layer_type_rebuilds_from_its_spec():
    assert {type(layer).__name__ for layer in EXAMPLES} == set(LAYER_TYPES)
    for layer in EXAMPLES:
        rebuilt = layer_from_spec(layer.spec())
        assert type(rebuilt) is type(layer) and rebuilt.spec() == layer.spec()
        assert repr(rebuilt) == repr(layer)


def test_unknown_layer_types_are_named_and_new_ones_can_register():
    with pytest.raises(ValueError, match="'Dropout'"):
        layer_from_spec({"type": "Dropout", "p": 0.5})

    class Scale(Layer):
        def forward(self, x, train=False):
            return 2 * x

        def backward(self, gy):
            return 2 * gy
    try:
        assert register_layer(Scale) is Scale
        assert isinstance(layer_from_spec({"type": "Scale"}), Scale)
    finally:
        LAYER_TYPES.pop("Scale")


def test_astype_converts_parameters_and_drops_gradients():
    layer = Dense(3, 2)
    layer.params["W"].grad = numpy.ones((3, 2), numpy.float32)
    layer.astype(numpy.float64)
    assert all(p.data.dtype == numpy.float64 and p.grad is None for p in layer.params.values())
    assert layer.forward(numpy.zeros((1, 3))).dtype == numpy.float64
