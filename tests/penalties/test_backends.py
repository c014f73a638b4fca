"""The penalties on other array backends: the strict CuPy stand-in (tests/support/strict_xp.py) proves
that the penalty code asks the backend for every array operation (a hidden host/device mix raises
there), and that float32 stays float32; CuPy itself, on a GPU, must match NumPy.
"""
import numpy
import pytest

import minidnn
from minidnn import backend
from minidnn.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sigmoid, Tanh
from minidnn.losses import SoftmaxCrossEntropy
from minidnn.networks import Sequential, build_model, with_noise
from minidnn.penalties import (GlobalContractive, LayerwiseContractive, find_blocks, global_penalty,
                               input_jacobian_norms, layer_norms)
from minidnn.training import SGD

from . import randomize, strict_module  # noqa: F401


def small_convnet(rng):
    return randomize(Sequential([Conv2D(1, 3, (3, 2), stride=(2, 1), padding=(1, 1), rng=rng), Sigmoid(),
                                 MaxPool2D(2), Conv2D(3, 2, 2, padding=1, rng=rng), ReLU(), Flatten(),
                                 Dense(2 * 3 * 5, 6, rng=rng), Tanh(), Dense(6, 4, rng=rng)], (1, 9, 8)), rng)


def small_mlp(rng):
    return randomize(Sequential([Dense(12, 7, rng=rng), Tanh(), Dense(7, 6, rng=rng), Sigmoid(),
                                 Dense(6, 4, rng=rng)], (12,)), rng)


PENALTIES = {
    "layer-wise": lambda net: LayerwiseContractive(net, [0.5] * len(find_blocks(net))),
    "global-softmax": lambda net: GlobalContractive(net, 0.5, "softmax"),
    "global-logits": lambda net: GlobalContractive(net, 0.5, "logits"),
}
CASES = [("mlp", "layer-wise"), ("mlp", "global-softmax"), ("mlp", "global-logits"), ("convnet", "layer-wise"),
         ("mlp-noise", "layer-wise"), ("mlp-noise", "global-softmax")]


def build(kind, dtype):
    rng = numpy.random.default_rng(0)
    with minidnn.use_dtype(dtype):
        net = small_convnet(rng) if kind == "convnet" else small_mlp(rng)
    if kind == "mlp-noise":
        net = with_noise(net, 0.1, "all", rng=3)
    x = rng.uniform(size=(6,) + net.input_shape).astype(dtype)
    return net, x, rng.integers(0, 4, 6)


def penalised_step(net, x, labels, penalty_name, xp):
    """One training step (forward, loss + penalty, backward, SGD) on arrays of module ``xp``.

    Returns host copies of what came out: the loss value, the penalty's per-block/global norms, the
    injections, ∂/∂x, every gradient and every updated parameter, and their dtypes."""
    x, labels = xp.asarray(x), xp.asarray(labels)
    penalty = PENALTIES[penalty_name](net)
    seen = {}

    def recording(net_):
        value, injections = penalty(net_)
        seen["value"], seen["injections"] = value, injections
        return value, injections
    optimizer = SGD(net.named_params(), lr=0.1, momentum=0.9)
    optimizer.zero_grad()
    loss, _, gx = net.loss_and_backward(x, labels, SoftmaxCrossEntropy(), train=True, penalties=[recording])
    grads = {k: p.grad for k, p in net.named_params().items()}
    out = {"loss": float(loss), "penalty": seen["value"], "gx": gx,
           **{f"injection {i}": g for i, g in seen["injections"].items()},
           **{f"grad {k}": g for k, g in grads.items()}}
    optimizer.step()
    out.update({f"param {k}": p.data for k, p in net.named_params().items()})
    if penalty_name == "layer-wise":
        out.update({f"norms {k}": v for k, v in layer_norms(net, x).items()})
    else:
        net.forward(x)
        out["norms global"] = global_penalty(net, penalty.output, grads=False)[0]
    out["jacobian"] = input_jacobian_norms(net, x, "softmax")
    dtypes = {k: v.dtype for k, v in out.items() if hasattr(v, "dtype")}
    if xp is not numpy and not isinstance(seen["value"], xp.ndarray):
        del dtypes["penalty"]                     # a host scalar off the device: the tests below say so
    return {k: (backend.to_numpy(v) if hasattr(v, "dtype") else v) for k, v in out.items()}, dtypes


def on_module(kind, penalty_name, dtype, module, name):
    net, x, labels = build(kind, dtype)
    net.astype(module=module)
    with backend.use_backend(name):
        return penalised_step(net, x, labels, penalty_name, module)


def compare(ours, reference, rtol, atol=0.0):
    assert ours.keys() == reference.keys()
    for k, v in reference.items():
        numpy.testing.assert_allclose(ours[k], v, rtol=rtol, atol=atol, err_msg=k)


# ---- the strict stand-in -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def strict():
    module = strict_module()
    if module is None:
        pytest.skip("the strict CuPy stand-in (tests/support/strict_xp.py) is not there yet")
    return module.strict if hasattr(module, "strict") else module


@pytest.mark.parametrize("kind,penalty_name", CASES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_strict_backend_penalised_step(kind, penalty_name, dtype, strict):
    ours, dtypes = on_module(kind, penalty_name, dtype, strict, "strict")
    assert all(d == numpy.dtype(dtype) for d in dtypes.values()), f"dtype changed: {dtypes}"
    assert "penalty" in dtypes and ours["penalty"] > 0      # a device array of the dtype: no sync per step
    reference, ref_dtypes = on_module(kind, penalty_name, dtype, numpy, "numpy")
    assert ref_dtypes == dtypes
    compare(ours, reference, rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-7 if dtype == "float32" else 0)


def test_strict_backend_refuses_host_arrays(strict):
    """The stand-in really is strict: a penalty fed a host array among device ones fails loudly."""
    net, x, labels = build("mlp", "float32")
    net.astype(module=strict)
    with backend.use_backend("strict"):
        net.forward(strict.asarray(x))
        net.layers[0].params["W"].data = backend.to_numpy(net.layers[0].params["W"].data)   # a host copy
        with pytest.raises(TypeError, match="implicit conversion"):
            LayerwiseContractive(net, 1.0)(net)


# ---- CuPy on a GPU -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cupy():
    module = pytest.importorskip("cupy")
    try:
        with backend.use_backend("cupy"):
            pass
    except backend.BackendError as exc:
        pytest.skip(f"CuPy cannot be used here: {exc}")
    return module


@pytest.mark.parametrize("kind,penalty_name", CASES)
def test_cupy_matches_numpy_float64(kind, penalty_name, cupy):
    ours, dtypes = on_module(kind, penalty_name, "float64", cupy, "cupy")
    assert all(d == numpy.float64 for d in dtypes.values())
    reference, _ = on_module(kind, penalty_name, "float64", numpy, "numpy")
    compare(ours, reference, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind,penalty_name", CASES)
def test_cupy_float32_stays_float32(kind, penalty_name, cupy):
    ours, dtypes = on_module(kind, penalty_name, "float32", cupy, "cupy")
    assert all(d == numpy.float32 for d in dtypes.values()), f"dtype changed: {dtypes}"
    reference, _ = on_module(kind, penalty_name, "float32", numpy, "numpy")
    compare(ours, reference, rtol=2e-4, atol=1e-5)


def test_cupy_paper_models_penalised_step(cupy):
    """The paper's N100-100-10 and ConvNet, float32, one layer-wise-penalised step each on the GPU."""
    for name in ("N100-100-10", "ConvNet"):
        net = build_model(name, rng=0).astype(module=cupy)
        rng = numpy.random.default_rng(0)
        x = rng.uniform(size=(16,) + net.input_shape).astype(numpy.float32)
        with backend.use_backend("cupy"):
            ours, dtypes = penalised_step(net, x, rng.integers(0, 10, 16), "layer-wise", cupy)
        assert all(d == numpy.float32 for d in dtypes.values())
        assert all(numpy.isfinite(v).all() for v in ours.values())
