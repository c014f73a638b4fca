"""The array backend: choosing NumPy/CuPy/stand-ins, restoring them, dtypes; and the strict stand-in itself."""
import importlib.util
import os
import subprocess
import sys

import numpy
import pytest

import minidnn
from minidnn import backend
from support.strict_xp import StrictArray, strict

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAVE_CUPY = importlib.util.find_spec("cupy") is not None


def run_python(code, **env):
    """Run ``code`` in a fresh interpreter (the backend is chosen once per process)."""
    environment = {**os.environ, "PYTHONPATH": REPO, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, cwd=REPO,
                          timeout=120)


@pytest.mark.skipif(HAVE_CUPY, reason="CuPy is installed here")
def test_cupy_requested_without_cupy_is_a_clear_error():
    with pytest.raises(minidnn.BackendError, match="CuPy is not installed: pip install"):
        minidnn.set_backend("cupy")
    assert minidnn.backend_name() == "numpy"          # the failed switch changed nothing


@pytest.mark.skipif(HAVE_CUPY, reason="CuPy is installed here")
def test_cupy_from_the_environment_without_cupy_is_a_clear_error():
    result = run_python("import minidnn; minidnn.Dense(2, 2)", MINIDNN_BACKEND="cupy")
    assert result.returncode != 0
    assert "BackendError: backend 'cupy' was requested but CuPy is not installed" in result.stderr


def test_the_environment_chooses_the_backend():
    result = run_python("import minidnn; print(minidnn.backend_name(), type(minidnn.Dense(2, 2).W).__module__)",
                        MINIDNN_BACKEND=" NumPy ")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["numpy", "numpy"]
    result = run_python("import minidnn; minidnn.xp()", MINIDNN_BACKEND="tensorflow")
    assert "BackendError: unknown backend 'tensorflow'" in result.stderr


def test_the_cuda_kernels_switch():
    """On by default, off with MINIDNN_FUSED_KERNELS=0 or inside use_fused_kernels(False); they run on CuPy only."""
    code = "from minidnn import backend; import numpy; print(backend.fused_kernels(), backend.fused_kernels(numpy))"
    unset = "import os; os.environ.pop('MINIDNN_FUSED_KERNELS', None); "
    assert run_python(unset + code).stdout.split() == ["True", "False"]
    assert run_python(code, MINIDNN_FUSED_KERNELS="0").stdout.split() == ["False", "False"]
    cupy_like = type(sys)("cupy")
    assert backend.fused_kernels(cupy_like)
    with backend.use_fused_kernels(False):
        assert not backend.fused_kernels(cupy_like)
    assert backend.fused_kernels(cupy_like)


def test_unknown_backend_names_the_choices():
    with pytest.raises(minidnn.BackendError, match=r"unknown backend 'jax'; choose one of \['numpy', 'cupy'"):
        minidnn.set_backend("jax")


def test_use_backend_restores_the_previous_backend():
    assert minidnn.backend_name() == "numpy"
    with minidnn.use_backend("strict") as module:
        assert module is strict and minidnn.xp() is strict and minidnn.backend_name() == "strict"
        assert isinstance(backend.as_array([1.0, 2.0]), StrictArray)
        with minidnn.use_backend("numpy"):
            assert minidnn.xp() is numpy
        assert minidnn.xp() is strict
    assert minidnn.xp() is numpy
    with pytest.raises(RuntimeError, match="inside"):
        with minidnn.use_backend("strict"):
            raise RuntimeError("inside")
    assert minidnn.backend_name() == "numpy"


def test_use_dtype_and_set_dtype():
    assert backend.float_dtype() == numpy.float32
    with minidnn.use_dtype("float64") as dtype:
        assert dtype == numpy.float64 and minidnn.Dense(2, 2).W.dtype == numpy.float64
    assert backend.float_dtype() == numpy.float32 and minidnn.Dense(2, 2).W.dtype == numpy.float32
    with pytest.raises(ValueError, match="float32 or float64, got int32"):
        minidnn.set_dtype("int32")
    with pytest.raises(ValueError):
        with minidnn.use_dtype(numpy.float16):
            pass
    assert backend.float_dtype() == numpy.float32


def test_array_modules_and_host_copies():
    host = numpy.arange(3.0)
    device = strict.asarray(host)
    assert minidnn.get_array_module(host) is numpy and minidnn.get_array_module(device) is strict
    assert minidnn.get_array_module(host, device) is strict
    copied = minidnn.to_numpy(device)
    assert type(copied) is numpy.ndarray and numpy.array_equal(copied, host)
    assert minidnn.to_numpy(2.5) == 2.5 and minidnn.to_numpy(host) is host


def test_registering_a_module_again_replaces_it():
    before = list(backend._registered)
    try:
        backend.register_array_module(StrictArray, numpy, "strict")
        assert minidnn.get_array_module(strict.zeros(1)) is numpy
        assert sum(name == "strict" for _, _, name in backend._registered) == 1
    finally:
        backend._registered[:] = before


# ---- the strict stand-in must be as strict as CuPy, or the backend tests prove nothing ----------------------
def test_strict_arrays_work_like_arrays():
    a = strict.asarray(numpy.arange(6, dtype=numpy.float32).reshape(2, 3))
    b = (2 * a + 1) @ a.T - a.sum(axis=1, keepdims=True)
    assert isinstance(b, StrictArray) and b.dtype == numpy.float32 and b.shape == (2, 2)
    assert isinstance(a.sum(), StrictArray) and a.sum().shape == () and float(a.sum()) == 15.0
    c = a.copy()
    c[0] += 10
    c[:, 1:] *= 2
    assert numpy.array_equal(c.get(), [[10, 22, 24], [3, 8, 10]]) and float(a[0, 0]) == 0.0
    assert isinstance(numpy.exp(a), StrictArray) and isinstance(numpy.concatenate([a, a]), StrictArray)
    assert numpy.array_equal(strict.asnumpy(a[a > 2]), [3, 4, 5])


@pytest.mark.parametrize("mix", [
    lambda a, h: a + h, lambda a, h: h + a, lambda a, h: h * a[0], lambda a, h: a @ h.T,
    lambda a, h: numpy.asarray(a), lambda a, h: numpy.array([a[0], a[1]]), lambda a, h: numpy.add(a, h),
    lambda a, h: numpy.concatenate([a, h]), lambda a, h: strict.exp(h), lambda a, h: strict.maximum(a, h),
    lambda a, h: strict.zeros_like(h), lambda a, h: a[numpy.array([0])], lambda a, h: a.__setitem__(0, h[0]),
    lambda a, h: numpy.float64(1.0) + h + a, lambda a, h: a + numpy.array(1.0),
], ids=["op", "rop", "rop-row", "matmul", "asarray", "array", "ufunc", "function", "module", "module2",
        "like", "index", "setitem", "chain", "0-d"])
def test_strict_arrays_refuse_to_mix_with_numpy(mix):
    a, h = strict.asarray(numpy.ones((2, 3))), numpy.ones((2, 3))
    with pytest.raises(TypeError, match="not allowed"):
        mix(a, h)
