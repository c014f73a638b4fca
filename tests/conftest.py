"""Shared test setup: a deterministic hypothesis profile, a clean backend per test, MNIST's location.

Hypothesis runs the "ci" profile unless HYPOTHESIS_PROFILE names another: few examples,
no deadline (finite differences are slow on a busy machine), derandomized so every run
tests the same cases. ``HYPOTHESIS_PROFILE=thorough`` explores more.
"""
import os
import pathlib

import pytest
from hypothesis import HealthCheck, settings

from minidnn import backend
from support.blas import one_openblas_thread

EMULATED_CUPY = os.environ.get("MINIDNN_EMULATE_CUPY") == "1"
if EMULATED_CUPY:                                       # CuPy emulated on the CPU (support/emulated_cupy.py)
    from support import emulated_cupy
    emulated_cupy.install()


@pytest.fixture(autouse=True)
def kernels_come_from_their_registries(monkeypatch):
    """Under the emulated CuPy, every kernel minidnn builds is one its module declares (KERNELS, PREAMBLE,
    OPTIONS), so that the nvcc check (test_kernels_compile_for_gpu.py) covers what actually runs."""
    if not EMULATED_CUPY:
        yield
        return
    from support.kernel_modules import declared_kernels
    declared = declared_kernels()
    build = backend.elementwise_kernel

    def checked(name, in_params, out_params, operation, preamble="", options=()):
        assert declared.get(name) == ((in_params, out_params, operation), preamble, tuple(options)), \
            f"kernel {name!r} is not built from its module's KERNELS, PREAMBLE and OPTIONS"
        return build(name, in_params, out_params, operation, preamble, options)
    monkeypatch.setattr(backend, "elementwise_kernel", checked)
    yield

settings.register_profile("ci", max_examples=10, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.register_profile("thorough", max_examples=200, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

REPO = pathlib.Path(__file__).resolve().parents[1]
MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def find_mnist():
    """$MINIDNN_DATA, else ../shared/data/mnist beside the repository; None if neither holds the files."""
    for directory in (os.environ.get("MINIDNN_DATA"), REPO.parent / "shared" / "data" / "mnist"):
        if directory and all(os.path.isfile(os.path.join(directory, f)) for f in MNIST_FILES):
            return str(directory)
    return None


@pytest.fixture
def mnist_dir():
    """The directory holding the four MNIST files; the test is skipped when there is none."""
    directory = find_mnist()
    if directory is None:
        pytest.skip("MNIST not found: set MINIDNN_DATA or put the files in ../shared/data/mnist")
    return directory


@pytest.fixture(scope="session", autouse=True)
def pinned_blas_threads():
    """Small matrix products, many of them: one OpenBLAS thread is far faster on busy cores."""
    with one_openblas_thread():
        yield


@pytest.fixture
def cupy_backend():
    """CuPy as this test's backend (the test is skipped where CuPy is missing or finds no GPU); returns
    the module. NumPy comes back after the test (numpy_float32_backend)."""
    cupy = pytest.importorskip("cupy")
    try:
        backend.set_backend("cupy")
    except backend.BackendError as exc:
        pytest.skip(f"CuPy is installed but unusable here: {exc}")
    return cupy


@pytest.fixture(autouse=True)
def numpy_float32_backend():
    """Every test starts on NumPy in float32 with the CUDA kernels on, whatever $MINIDNN_BACKEND and
    $MINIDNN_FUSED_KERNELS say, and leaves no trace."""
    with backend.use_backend("numpy"), backend.use_dtype("float32"), backend.use_fused_kernels(True):
        yield
