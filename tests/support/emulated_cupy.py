"""An emulated CuPy on the CPU, so that the CuPy tests and minidnn's CUDA kernels run without a GPU.

``MINIDNN_EMULATE_CUPY=1 python -m pytest tests -k cupy`` installs this module as ``cupy`` (where the
real one is missing): minidnn then takes its arrays for device arrays, runs its CuPy code paths,
and launches its kernels, each ``ElementwiseKernel`` compiled for the host from the same source
(``#define __device__``, no contraction of a·b + c) and run as a loop over the elements. This is
not a GPU: the arithmetic of the array code is NumPy's (CuPy's own rounding, flush-to-zero and
parallel reductions are not imitated), and nothing is timed. What it checks is everything around
the arithmetic: that the kernels compile and are reached, that their wrappers pass the arguments in
the order the parameter lists declare, shapes, dtypes, contiguity, and the CuPy tests themselves,
so that a GPU session does not find a broken test.

Arrays are a NumPy subclass (``ndarray``) that minidnn's backend registers as CuPy's; the module's
functions are NumPy's, returning that subclass. Unlike the strict stand-in (strict_xp.py), it does
not refuse host arrays: mixing is the strict stand-in's job.
"""
import ctypes
import hashlib
import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import types

import numpy

# ---- arrays and the module's functions ---------------------------------------------------------


class ndarray(numpy.ndarray):
    """A host array that minidnn takes for a CuPy array."""

    def get(self):
        """A host copy (cupy.ndarray.get)."""
        return numpy.array(self, copy=True, subok=False)


def _device(value):
    """Arrays in ``value`` (or a tuple/list of them) as emulated device arrays."""
    if isinstance(value, numpy.ndarray) and not isinstance(value, ndarray):
        return value.view(ndarray)
    if isinstance(value, tuple):
        return tuple(_device(v) for v in value)
    if isinstance(value, list):
        return [_device(v) for v in value]
    return value


def _wrapped(function):
    def call(*args, **kwargs):
        return _device(function(*args, **kwargs))
    call.__name__ = getattr(function, "__name__", "function")
    return call


class _Namespace(types.ModuleType):
    """NumPy's functions (or a submodule's) returning emulated device arrays."""

    def __init__(self, name, source):
        super().__init__(name)
        self._source = source

    def __getattr__(self, name):
        value = getattr(self._source, name)
        return _wrapped(value) if callable(value) and not isinstance(value, type) else value


def asarray(a, dtype=None):
    """Host data copied in (cupy.asarray); emulated arrays kept unless the dtype changes."""
    if isinstance(a, ndarray) and (dtype is None or numpy.dtype(dtype) == a.dtype):
        return a
    return numpy.array(a, dtype=dtype, copy=True, subok=False).view(ndarray)


def asnumpy(a):
    return numpy.array(a, copy=True, subok=False)


class _Runtime:
    @staticmethod
    def getDeviceCount():
        return 1

    @staticmethod
    def getDeviceProperties(device):
        return {"name": b"emulated CuPy (tests/support/emulated_cupy.py)"}


class _Stream:
    @staticmethod
    def synchronize():
        return None


class _Device:
    id = 0


cuda = types.SimpleNamespace(runtime=_Runtime, Stream=types.SimpleNamespace(null=_Stream), Device=_Device,
                             get_current_stream=lambda: _Stream)

# ---- ElementwiseKernel: the same source, compiled for the host ---------------------------------

C_TYPES = {"float64": ("double", ctypes.c_double), "float32": ("float", ctypes.c_float),
           "int64": ("long long", ctypes.c_longlong), "int32": ("int", ctypes.c_int),
           "int16": ("short", ctypes.c_short), "int8": ("signed char", ctypes.c_byte),
           "uint8": ("unsigned char", ctypes.c_ubyte), "bool": ("bool", ctypes.c_bool)}
PROLOGUE = """#include <cmath>
#include <cstdint>
using std::exp; using std::log; using std::sqrt; using std::fabs; using std::tanh;
#define __device__
"""
_BUILD = tempfile.mkdtemp(prefix="emulated_cupy_")
_LIBRARIES = {}


def _parse(params):
    """'raw T x, int64 C, bool done' -> [(raw, type, name)]."""
    out = []
    for item in filter(None, (p.strip() for p in params.split(","))):
        words = item.split()
        raw = words[0] == "raw"
        if raw:
            words = words[1:]
        if len(words) != 2:
            raise ValueError(f"cannot read the kernel parameter {item!r}")
        out.append((raw, words[0], words[1]))
    return out


def _dtype_name(dtype):
    name = numpy.dtype(dtype).name
    if name not in C_TYPES:
        raise TypeError(f"the emulated ElementwiseKernel does not take {name} arrays")
    return name


class ElementwiseKernel:
    """cupy.ElementwiseKernel for the host: one C++ function looping over the elements."""

    def __init__(self, in_params, out_params, operation, name="kernel", preamble="", options=(), **unused):
        self.ins, self.outs = _parse(in_params), _parse(out_params)
        self.operation, self.name, self.preamble, self.options = operation, name, preamble, tuple(options)

    def _types(self, args):
        """Placeholder letters (T, I, ...) -> dtype names, from the arrays given for them."""
        found = {}
        for (raw, kind, name), arg in zip(self.ins + self.outs, args):
            if kind not in C_TYPES and isinstance(arg, numpy.ndarray):
                dtype = _dtype_name(arg.dtype)
                if found.setdefault(kind, dtype) != dtype:
                    raise TypeError(f"kernel {self.name}: {kind} is {found[kind]} and {dtype}")
        return found

    def _is_array(self, index, raw, kind):
        """Raw parameters, outputs and placeholder-typed inputs are arrays; typed inputs are scalars."""
        return raw or index >= len(self.ins) or kind not in C_TYPES

    def _library(self, types_):
        params, binds = [], []
        for index, (raw, kind, name) in enumerate(self.ins + self.outs):
            ctype, const = C_TYPES[types_.get(kind, kind)][0], "const " if index < len(self.ins) else ""
            if raw:
                params.append(f"{const}{ctype}* {name}")
            elif not self._is_array(index, raw, kind):           # a scalar
                params.append(f"{ctype} {name}")
            else:                                                # an element of a non-raw array
                params.append(f"{const}{ctype}* _{name}")
                binds.append(f"{const}{ctype}& {name} = _{name}[i];")
        typedefs = "".join(f"typedef {C_TYPES[dtype][0]} {letter};\n" for letter, dtype in sorted(types_.items()))
        source = (PROLOGUE + typedefs + self.preamble +
                  f'\nextern "C" void run(long long _n, {", ".join(params)}) {{\n'
                  f"    for (long long i = 0; i < _n; ++i) {{\n        {' '.join(binds)}\n"
                  f"        {self.operation}\n    }}\n}}\n")
        key = hashlib.sha256(source.encode()).hexdigest()[:20]
        if key not in _LIBRARIES:
            compiler = shutil.which("g++") or shutil.which("clang++")
            if compiler is None:
                raise RuntimeError("the emulated CuPy needs a host C++ compiler (g++ or clang++)")
            path, library = os.path.join(_BUILD, key + ".cpp"), os.path.join(_BUILD, key + ".so")
            with open(path, "w", encoding="ascii") as f:      # fails on non-ASCII, as CuPy may
                f.write(source)
            flags = ["-O1", "-ffp-contract=off", "-shared", "-fPIC"]
            result = subprocess.run([compiler, *flags, "-o", library, path], capture_output=True, text=True)
            if result.returncode:
                raise RuntimeError(f"kernel {self.name} does not compile:\n{result.stderr}")
            _LIBRARIES[key] = ctypes.CDLL(library)
        return _LIBRARIES[key].run

    def __call__(self, *args, size=None):
        params = self.ins + self.outs
        if len(args) != len(params):
            raise TypeError(f"kernel {self.name} takes {len(params)} arguments (outputs included: the emulation "
                            f"does not allocate them), got {len(args)}")
        types_ = self._types(args)
        sizes = {arg.size for index, ((raw, kind, _), arg) in enumerate(zip(params, args))
                 if not raw and self._is_array(index, raw, kind)}
        if size is None:
            if len(sizes) != 1:
                raise ValueError(f"kernel {self.name}: the non-raw arrays' sizes {sorted(sizes)} differ (or none)")
            size = sizes.pop()
        elif sizes:
            raise ValueError(f"kernel {self.name}: size given with non-raw arrays")
        pointers, buffers, write_back = [], [], []
        for index, ((raw, kind, name), arg) in enumerate(zip(params, args)):
            dtype = types_.get(kind, kind)
            if not self._is_array(index, raw, kind):
                pointers.append(C_TYPES[dtype][1](arg))
                continue
            if not isinstance(arg, ndarray):
                raise TypeError(f"kernel {self.name}: {name} must be a device array, got {type(arg).__name__}")
            if _dtype_name(arg.dtype) != dtype:
                raise TypeError(f"kernel {self.name}: {name} is {arg.dtype}, the kernel wants {dtype}")
            buffer = numpy.ascontiguousarray(arg)
            if index >= len(self.ins) and not numpy.shares_memory(buffer, arg):
                write_back.append((arg, buffer))
            buffers.append(buffer)                               # alive until the call returns
            pointers.append(ctypes.c_void_p(buffer.ctypes.data))
        self._library(types_)(ctypes.c_longlong(size), *pointers)
        for original, buffer in write_back:
            original[...] = buffer
        outs = args[len(self.ins):]
        return outs[0] if len(outs) == 1 else tuple(outs)


# ---- the module -------------------------------------------------------------------------------------


def module():
    """The emulated ``cupy`` module (NumPy's functions, the ndarray subclass, ElementwiseKernel)."""
    fake = _Namespace("cupy", numpy)
    fake.__spec__ = importlib.machinery.ModuleSpec("cupy", None)
    fake.__version__ = "emulated"
    for name in ("ndarray", "asarray", "asnumpy", "cuda", "ElementwiseKernel"):
        setattr(fake, name, globals()[name])
    fake.array = lambda a, dtype=None, copy=True: asarray(numpy.array(a, dtype=dtype, copy=copy))
    fake.linalg = _Namespace("cupy.linalg", numpy.linalg)
    return fake


def install():
    """Make ``import cupy`` give the emulation, where the real CuPy is not installed. Returns it, or None."""
    if "cupy" in sys.modules or importlib.util.find_spec("cupy") is not None:
        return None
    fake = module()
    sys.modules["cupy"] = fake
    return fake


