"""The array backend: NumPy by default, CuPy when chosen, one code path for both.

Library code never names NumPy or CuPy: it asks ``get_array_module(x)`` for the
module that owns an array (Chainer's habit), or ``xp()`` for the current backend
when it creates arrays from nothing.

    MINIDNN_BACKEND=cupy python ...          # environment
    minidnn.set_backend("cupy")              # a call
    with minidnn.use_backend("cupy"): ...    # a context manager

The default float type is float32; ``use_dtype("float64")`` (or ``set_dtype``)
switches it, which the gradient checks do.

On CuPy the launch-bound hot spots run as single CUDA kernels written to give the array code's
results: SGD's update, im2col/col2im, max pooling, ReLU, the sigmoid, softmax cross-entropy, the
attack's line-search step and Cauchy sums (bit for bit; the cross-entropy and the sigmoid's forward
to rounding). The tests check their C++ on the host, and on the GPU where there is one.
``use_fused_kernels(False)`` (or ``MINIDNN_FUSED_KERNELS=0``) runs the array code instead, to
compare. CuPy compiles every kernel, its own included, with flush-to-zero: in float32, subnormals
(below 1.2e-38) count as zero in arithmetic, where NumPy keeps them.
"""
import contextlib
import os

import numpy

__all__ = [
    "BackendError", "get_array_module", "xp", "backend_name", "set_backend",
    "use_backend", "float_dtype", "set_dtype", "use_dtype", "to_numpy",
    "register_array_module", "as_array", "fused_kernels", "set_fused_kernels", "use_fused_kernels",
]


class BackendError(RuntimeError):
    """The requested array backend cannot be used here."""


# (array type, module) pairs consulted by get_array_module, besides NumPy.
# CuPy registers itself when it is first chosen; tests register a strict stand-in.
_registered = []
_state = {"name": None, "module": None, "dtype": numpy.dtype(numpy.float32), "fused": None}
_kernels = {}                                   # (name, source...) -> cupy.ElementwiseKernel (elementwise_kernel)


def register_array_module(array_type, module, name):
    """Teach the backend about another array module (CuPy, or a test stand-in)."""
    for i, (t, _, n) in enumerate(_registered):
        if n == name:
            _registered[i] = (array_type, module, name)
            return
    _registered.append((array_type, module, name))


def _load_cupy():
    try:
        import cupy
    except ImportError as exc:
        raise BackendError(
            "backend 'cupy' was requested but CuPy is not installed: "
            "pip install 'minidnn[gpu]' (a prebuilt wheel such as cupy-cuda12x)") from exc
    try:
        n_devices = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver missing or broken
        raise BackendError(f"backend 'cupy' was requested but CUDA is unusable: {exc}") from exc
    if n_devices < 1:
        raise BackendError("backend 'cupy' was requested but no GPU was found")
    register_array_module(cupy.ndarray, cupy, "cupy")
    return cupy


def _module_for(name):
    if name == "numpy":
        return numpy
    if name == "cupy":
        return _load_cupy()
    for _, module, n in _registered:
        if n == name:
            return module
    known = ["numpy", "cupy"] + [n for _, _, n in _registered if n != "cupy"]
    raise BackendError(f"unknown backend {name!r}; choose one of {known}")


def set_backend(name):
    """Make ``name`` ('numpy', 'cupy' or a registered stand-in) the current backend."""
    module = _module_for(name)
    _state["name"], _state["module"] = name, module
    return module


def xp():
    """The current backend's array module (NumPy unless another was chosen)."""
    if _state["module"] is None:
        set_backend(os.environ.get("MINIDNN_BACKEND", "numpy").strip().lower() or "numpy")
    return _state["module"]


def backend_name():
    xp()
    return _state["name"]


@contextlib.contextmanager
def use_backend(name):
    """``with use_backend('cupy'):`` runs the block on another backend."""
    old = (_state["name"], _state["module"])
    set_backend(name)
    try:
        yield _state["module"]
    finally:
        _state["name"], _state["module"] = old


def get_array_module(*arrays):
    """The module that owns these arrays: CuPy (or a stand-in) if any is one, else NumPy."""
    for a in arrays:
        for array_type, module, _ in _registered:
            if isinstance(a, array_type):
                return module
    return numpy


def fused_kernels(module=None):
    """Whether the CUDA kernels are on (and, given an array module, whether it is CuPy's, where they run)."""
    if _state["fused"] is None:
        _state["fused"] = os.environ.get("MINIDNN_FUSED_KERNELS", "1").strip() != "0"
    return _state["fused"] and (module is None or module.__name__ == "cupy")


def set_fused_kernels(on):
    _state["fused"] = bool(on)


@contextlib.contextmanager
def use_fused_kernels(on):
    """``with use_fused_kernels(False):`` runs the array code where a CUDA kernel would run."""
    old = fused_kernels()
    set_fused_kernels(on)
    try:
        yield
    finally:
        _state["fused"] = old


def elementwise_kernel(name, in_params, out_params, operation, preamble="", options=()):
    """A ``cupy.ElementwiseKernel``, made on first use and kept (CuPy imported here, not before; CuPy
    compiles it at the first call and caches the binary on disk)."""
    key = (name, in_params, out_params, operation, preamble, tuple(options))
    if key not in _kernels:
        import cupy
        _kernels[key] = cupy.ElementwiseKernel(in_params, out_params, operation, name=name, preamble=preamble,
                                               options=tuple(options))
    return _kernels[key]


def float_dtype():
    """The default float type of new parameters and data (float32 unless changed)."""
    return _state["dtype"]


def set_dtype(dtype):
    dtype = numpy.dtype(dtype)
    if dtype not in (numpy.float32, numpy.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    _state["dtype"] = dtype


@contextlib.contextmanager
def use_dtype(dtype):
    old = _state["dtype"]
    set_dtype(dtype)
    try:
        yield _state["dtype"]
    finally:
        _state["dtype"] = old


def as_array(a, dtype=None):
    """``a`` as an array of the current backend (copied to the device if needed)."""
    return xp().asarray(a, dtype=dtype)


def to_numpy(a):
    """A NumPy copy/view of any backend's array (device arrays are copied to the host)."""
    module = get_array_module(a)
    if module is not numpy:        # CuPy's (or a stand-in's) array, whatever its Python type
        return a.get() if hasattr(a, "get") else module.asnumpy(a)
    return numpy.asarray(a)
