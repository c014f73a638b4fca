"""Dense: y = x W + b, its hand-written backward, parameters and decay flags."""
import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minidnn
from minidnn.gradcheck import check_layer
from minidnn.layers import Dense, layer_from_spec
from support.arrays import seeds


@given(n=st.integers(1, 4), n_in=st.integers(1, 6), n_out=st.integers(1, 5),
       init=st.sampled_from(["glorot", "he"]), seed=seeds)
def test_gradients_match_finite_differences(n, n_in, n_out, init, seed):
    rng = numpy.random.default_rng(seed)
    with minidnn.use_dtype("float64"):
        layer = Dense(n_in, n_out, init=init, rng=seed)
        layer.params["b"].data += rng.standard_normal(n_out)      # a non-zero bias
        check_layer(layer, rng.standard_normal((n, n_in)), seed=seed).assert_ok()


def test_forward_is_affine():
    rng = numpy.random.default_rng(0)
    layer = Dense(3, 2, rng=1)
    layer.params["b"].data[...] = [0.5, -1.0]
    x = rng.standard_normal((4, 3)).astype(numpy.float32)
    expected = numpy.array([[sum(x[n, i] * layer.W[i, k] for i in range(3)) + layer.b[k] for k in range(2)]
                            for n in range(4)])
    numpy.testing.assert_allclose(layer.forward(x), expected, rtol=1e-6)


def test_parameter_gradients_accumulate_and_can_be_skipped():
    rng = numpy.random.default_rng(0)
    with minidnn.use_dtype("float64"):
        layer = Dense(3, 2, rng=0)
        x, gy = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
        layer.forward(x)
        layer.backward(gy)
        once = {k: p.grad.copy() for k, p in layer.params.items()}
        layer.backward(gy)                                          # a parameter used twice: grads add
        for k, p in layer.params.items():
            numpy.testing.assert_allclose(p.grad, 2 * once[k], rtol=1e-12)
        for p in layer.params.values():
            p.zero_grad()
        layer.compute_param_grads = False
        gx = layer.backward(gy)
    assert all(p.grad is None for p in layer.params.values())
    numpy.testing.assert_allclose(gx, gy @ layer.W.T, rtol=1e-12)


def test_weights_decay_and_bias_does_not():
    layer = Dense(3, 2)
    assert layer.params["W"].decay and not layer.params["b"].decay
    assert not Dense(3, 2, decay=False).params["W"].decay


def test_initialisation_is_seeded_and_in_the_default_dtype():
    numpy.testing.assert_array_equal(Dense(5, 4, rng=3).W, Dense(5, 4, rng=3).W)
    assert not numpy.array_equal(Dense(5, 4, rng=3).W, Dense(5, 4, rng=4).W)
    assert Dense(5, 4).W.dtype == numpy.float32
    with minidnn.use_dtype("float64"):
        assert Dense(5, 4).W.dtype == numpy.float64
    limit = numpy.sqrt(6 / (50 + 40))
    assert numpy.abs(Dense(50, 40, init="glorot").W).max() <= limit
    he = Dense(400, 300, init="he").W
    assert abs(he.std() - numpy.sqrt(2 / 400)) < 0.05 * numpy.sqrt(2 / 400)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="init"):
        Dense(3, 2, init="xavier")
    with pytest.raises(ValueError, match=r"expected input \(N, 3\)"):
        Dense(3, 2).forward(numpy.zeros((2, 4), numpy.float32))


def test_spec_rebuilds_the_same_layer():
    layer = Dense(3, 2, init="he", decay=False)
    rebuilt = layer_from_spec(layer.spec())
    assert rebuilt.spec() == layer.spec() and isinstance(rebuilt, Dense)
    assert layer.output_shape((3,)) == (2,)
