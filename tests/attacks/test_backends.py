"""The batched attack (and minimal mode, which reuses its optimiser) on every array backend.

* the strict stand-in (tests/support/strict_xp.py): wraps NumPy, so results must be identical
  to NumPy's; it refuses every silent host/device mix, as CuPy would on a GPU;
* CuPy, where installed and a GPU is present: the same verdicts and distortions.
"""
import numpy
import pytest

from minidnn import backend
from minidnn.attacks import UNTARGETED, batched_lbfgs_attack, choose_targets
from minidnn.attacks.minimal import minimal_attack
from minidnn.networks import mlp

D, N = 64, 16


@pytest.fixture(scope="module")
def case():
    """A 64-32-10 network (host NumPy, float32), images like MNIST's, labels = its own predictions."""
    rng = numpy.random.default_rng(11)
    with backend.use_backend("numpy"), backend.use_dtype("float32"):
        net = mlp([32], n_in=D, rng=11)
    kind = rng.choice(3, size=(N, D), p=[0.6, 0.2, 0.2])
    x = numpy.where(kind == 0, 0.0, numpy.where(kind == 1, 1.0, rng.uniform(0, 1, (N, D)))).astype(numpy.float32)
    labels = net.predict(x)
    return net, x, labels, choose_targets(net, x, labels, "random", rng=11)


RUNS = {
    "batched, targeted": lambda net, x, y, t: batched_lbfgs_attack(net, x, y, t, 0.1, batch_size=6),
    "batched, untargeted": lambda net, x, y, t: batched_lbfgs_attack(net, x, y, numpy.full(N, UNTARGETED), 0.1),
    "batched, float32": lambda net, x, y, t: batched_lbfgs_attack(net, x, y, t, 0.1, dtype="float32"),
    "batched, searches wait": lambda net, x, y, t: batched_lbfgs_attack(net, x, y, t, 0.1, search_rounds=1),
    "minimal": lambda net, x, y, t: minimal_attack(net, x, y, t, c_init=0.1, steps=3),
}


@pytest.fixture(scope="module")
def on_numpy(case):
    with backend.use_backend("numpy"):
        return {name: run(*case) for name, run in RUNS.items()}


@pytest.mark.parametrize("name", list(RUNS))
def test_strict_stand_in_gives_numpys_result(case, on_numpy, name, strict):
    with backend.use_backend("strict"):
        result = RUNS[name](*case)
    expected = on_numpy[name]
    assert type(result.adversarial) is numpy.ndarray              # results come back to the host
    numpy.testing.assert_array_equal(result.adversarial, expected.adversarial)
    numpy.testing.assert_array_equal(result.predicted, expected.predicted)
    numpy.testing.assert_array_equal(result.iterations, expected.iterations)
    numpy.testing.assert_array_equal(result.converged, expected.converged)
    assert result.meta.get("backend", "strict") == "strict"


@pytest.mark.parametrize("kernels", [True, False], ids=["kernels", "array code"])
@pytest.mark.parametrize("name", list(RUNS))
def test_cupy_gives_the_same_verdicts(case, on_numpy, name, kernels, cupy_backend):
    with backend.use_fused_kernels(kernels):         # the line-search step's CUDA kernel, or its array code
        result = RUNS[name](*case)
    expected = on_numpy[name]
    assert type(result.adversarial) is numpy.ndarray           # host arrays (a device array is one too, emulated)
    assert result.adversarial.min() >= 0 and result.adversarial.max() <= 1
    # GPU reductions round differently, so trajectories may part late: compare the outcome
    assert abs(result.error_rate - expected.error_rate) <= 1 / N
    assert result.mean_distortion == pytest.approx(expected.mean_distortion, rel=0.02)
    assert (result.predicted == expected.predicted).mean() >= 0.9
