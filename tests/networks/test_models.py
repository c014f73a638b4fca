"""The paper's four models (Table 1), built by name."""
import numpy
import pytest

from minidnn.layers import Conv2D, Dense, Sigmoid
from minidnn.networks import MODELS, autoencoder, build_model, input_layout


@pytest.mark.parametrize("name, params, layout", [
    ("N100-100-10", 784 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10, "flat"),
    ("N200-200-10", 784 * 200 + 200 + 200 * 200 + 200 + 200 * 10 + 10, "flat"),
    ("AE400-10", 784 * 400 + 400 + 400 * 10 + 10, "flat"),
    ("ConvNet", 20 * 25 + 20 + 40 * 20 * 25 + 40 + 640 * 150 + 150 + 150 * 10 + 10, "image"),
])
def test_models_by_name(name, params, layout):
    net = build_model(name, rng=0)
    assert net.name == name and net.num_params() == params and input_layout(net) == layout
    x = numpy.zeros((2,) + net.input_shape, numpy.float32)
    assert net.forward(x).shape == (2, 10)
    numpy.testing.assert_array_equal(build_model(name, rng=0).layers[0].params["W"].data,
                                     net.layers[0].params["W"].data)


def test_model_details():
    assert set(MODELS) == {"N100-100-10", "N200-200-10", "AE400-10", "ConvNet"}
    convnet = build_model("ConvNet")
    assert not any(l.params["W"].decay for l in convnet.layers if isinstance(l, Conv2D))
    assert all(l.params["W"].decay for l in convnet.layers if isinstance(l, Dense))
    assert isinstance(build_model("AE400-10").layers[1], Sigmoid)
    ae = autoencoder()
    assert ae.input_shape == (784,) and ae.output_shape_ == (784,) and isinstance(ae.layers[-1], Sigmoid)
    with pytest.raises(ValueError, match="unknown model 'LeNet'"):
        build_model("LeNet")
