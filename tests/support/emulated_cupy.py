"""An emulated CuPy on the CPU, so that the CuPy tests and minidnn's CUDA kernels run without a GPU.

``MINIDNN_EMULATE_CUPY=1 python -m pytest tests -k cupy`` installs this module as ``cupy`` (where the
real one is missing): minidnn then takes its arrays for device arrays, runs its CuPy code paths,
and launches its kernels, each ``ElementwiseKernel`` compiled for the host from the same source
(``#define __device__``; a*b + c contracted into an FMA unless the kernel asks for
``--fmad=false``, as CUDA does) and run as a loop over the elements. This is not a GPU: the
arithmetic of the array code is NumPy's (CuPy's own rounding, flush-to-zero and parallel
reductions are not imitated), scalar indexing and full reductions give NumPy scalars where CuPy
gives 0-d arrays, and nothing is timed. What it checks is everything around the arithmetic: that
the kernels compile and are reached, that their wrappers pass the arguments in the order the
parameter lists declare, with CuPy's rules for shapes (broadcasting, exact output shapes) and
dtypes, contiguity, and the CuPy tests themselves, so that a GPU session does not find a broken
test.

Arrays are a NumPy subclass (``ndarray``) that minidnn's backend registers as CuPy's; the module's
functions are NumPy's, returning that subclass. Unlike the strict stand-in (strict_xp.py), it does
not refuse host arrays: mixing is the strict stand-in's job.
"""
import atexit
import ctypes
import hashlib
import importlib.machinery
import importlib.util
import os
import shutil
import sys
import tempfile
import types

import numpy

from . import host_kernels

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
MATH = "#include <cstddef>\nusing std::exp; using std::log; using std::sqrt; using std::fabs; using std::tanh;\n"
# CuPy's CArray as a kernel sees a raw parameter: indexed by a flat index and nothing else (no
# pointer arithmetic, no conversion to a pointer); elements of a const (input) array are const
RAW_ARRAY = r"""
template <typename T> struct RawArray {
    T* data;
    __device__ T& operator[](ptrdiff_t k) { return data[k]; }
    __device__ const T& operator[](ptrdiff_t k) const { return data[k]; }
};
"""
_BUILD = tempfile.mkdtemp(prefix="emulated_cupy_")
atexit.register(shutil.rmtree, _BUILD, True)
_LIBRARIES = {}


def _host_has_fma():
    try:
        with open("/proc/cpuinfo") as f:
            return " fma " in f.read().replace("\n", " ")
    except OSError:
        return False


def _flags(options):
    """The host compiler's flags for CuPy options: with --fmad=false no contraction of a*b + c;
    without it (CUDA's default) contraction where the host has FMA, so that a kernel that forgot
    the option rounds differently here too."""
    if "--fmad=false" in options or not _host_has_fma():
        return host_kernels.STRICT_FLAGS
    return ("-O2", "-mfma", "-ffp-contract=fast")


def _parse(params):
    """'raw T x, int64 C, bool done' -> [(raw, type, name)]: a type is a dtype name or a placeholder
    (a single capital letter), as CuPy reads them."""
    out = []
    for item in filter(None, (p.strip() for p in params.split(","))):
        words = item.split()
        raw = words[0] == "raw"
        words = words[1:] if raw else words
        if len(words) != 2:
            raise ValueError(f"cannot read the kernel parameter {item!r}")
        kind, name = words
        if name == "i":
            raise ValueError("a kernel parameter cannot be named 'i' (CuPy's index)")
        if not (len(kind) == 1 and kind.isupper()):
            kind = numpy.dtype(kind).name                       # raises for what is not a dtype
            if kind not in C_TYPES:
                raise TypeError(f"the emulated ElementwiseKernel does not take {kind} parameters")
        out.append((raw, kind, name))
    return out


def _dtype_name(dtype):
    name = numpy.dtype(dtype).name
    if name not in C_TYPES:
        raise TypeError(f"the emulated ElementwiseKernel does not take {name} arrays")
    return name


class ElementwiseKernel:
    """cupy.ElementwiseKernel for the host: one C++ function looping over the elements.

    Stricter than CuPy where that is simpler: outputs must be given (never allocated), placeholder
    types come from arrays only, no ``_ind``, float16 and unsigned types other than uint8 are not
    taken, and it needs a host C++ compiler.
    """

    def __init__(self, in_params, out_params, operation, name="kernel", reduce_dims=True, preamble="",
                 no_return=False, return_tuple=False, options=(), **unused):
        self.ins, self.outs = _parse(in_params), _parse(out_params)
        self.operation, self.name, self.preamble, self.options = operation, name, preamble, tuple(options)
        self.no_return, self.return_tuple = no_return, return_tuple

    def _is_array(self, index, raw, kind):
        """Raw parameters, outputs and placeholder-typed inputs are arrays; typed inputs are scalars."""
        return raw or index >= len(self.ins) or kind not in C_TYPES

    def _types(self, args):
        """Placeholder letters (T, I, ...) -> dtype names, from the arrays given for them."""
        found = {}
        for (raw, kind, name), arg in zip(self.ins + self.outs, args):
            if kind not in C_TYPES and isinstance(arg, numpy.ndarray):
                dtype = _dtype_name(arg.dtype)
                if found.setdefault(kind, dtype) != dtype:
                    raise TypeError(f"kernel {self.name}: {kind} is {found[kind]} and {dtype}")
        missing = {kind for _, kind, _ in self.ins + self.outs if kind not in C_TYPES} - set(found)
        if missing:
            raise TypeError(f"kernel {self.name}: no array gives the type of {sorted(missing)}")
        return found

    def source(self, types_, device=False, function="run"):
        """The kernel as C++ with CuPy's bindings: a raw parameter is an array object indexed by a flat
        index (``RawArray``, CuPy's CArray with only its ``operator[]``; const for inputs), a non-raw
        one a reference to its element, a typed scalar a const value, ``i`` a ``ptrdiff_t``. For the
        host ``extern "C" void run(n, ...)`` loops over the elements (arrays passed as pointers);
        with ``device``, ``extern "C" __global__ void <function>`` runs a grid-stride loop, as CuPy's."""
        params, setup, binds = [], [], []
        for index, (raw, kind, name) in enumerate(self.ins + self.outs):
            ctype = C_TYPES[types_.get(kind, kind)][0]
            const = "const " if index < len(self.ins) else ""
            if not self._is_array(index, raw, kind):            # a typed scalar
                params.append(f"const {ctype} {name}")
                continue
            array = name if raw else f"_raw_{name}"
            if device:
                params.append(f"{const}RawArray<{ctype}> {array}")
            else:
                params.append(f"void* _p_{name}")
                setup.append(f"{const}RawArray<{ctype}> {array}{{({ctype}*)_p_{name}}};")
            if not raw:
                binds.append(f"{const}{ctype}& {name} = {array}[i];")
        typedefs = "".join(f"typedef {C_TYPES[dtype][0]} {letter};\n" for letter, dtype in sorted(types_.items()))
        body = f"        {' '.join(binds)}\n        {self.operation}\n    }}\n}}\n"
        if device:
            return (RAW_ARRAY + typedefs + self.preamble +
                    f'\nextern "C" __global__ void {function}(const ptrdiff_t _n, {", ".join(params)}) {{\n'
                    "    for (ptrdiff_t i = blockIdx.x * (ptrdiff_t)blockDim.x + threadIdx.x; i < _n;\n"
                    "         i += (ptrdiff_t)blockDim.x * gridDim.x) {\n" + body)
        return (MATH + RAW_ARRAY + typedefs + self.preamble +
                f'\nextern "C" void {function}(long long _n, {", ".join(params)}) {{\n'
                f"    {' '.join(setup)}\n    for (ptrdiff_t i = 0; i < _n; ++i) {{\n" + body)

    def _library(self, types_):
        source = self.source(types_)
        flags = _flags(self.options)
        key = hashlib.sha256((source + " ".join(flags)).encode()).hexdigest()[:20]
        if key not in _LIBRARIES:
            if host_kernels.compiler() is None:
                raise RuntimeError("the emulated CuPy needs a host C++ compiler (g++ or clang++)")
            directory = os.path.join(_BUILD, key)
            os.makedirs(directory)
            try:
                _LIBRARIES[key] = host_kernels.build(source, directory, flags)
            except RuntimeError as exc:
                raise RuntimeError(f"kernel {self.name}: {exc}") from None
        return _LIBRARIES[key].run

    def __call__(self, *args, size=None):
        params = self.ins + self.outs
        if len(args) != len(params):
            raise TypeError(f"kernel {self.name} takes {len(params)} arguments (outputs included: the emulation "
                            f"does not allocate them), got {len(args)}")
        types_ = self._types(args)
        arrays = [index for index, (raw, kind, _) in enumerate(params) if self._is_array(index, raw, kind)]
        for index in arrays:
            name, arg = params[index][2], args[index]
            if not isinstance(arg, ndarray):
                raise TypeError(f"kernel {self.name}: {name} must be a device array, got {type(arg).__name__}")
            if _dtype_name(arg.dtype) != types_.get(params[index][1], params[index][1]):
                raise TypeError(f"kernel {self.name}: {name} is {arg.dtype}, the kernel wants "
                                f"{types_.get(params[index][1], params[index][1])}")
        elementwise = [index for index in arrays if not params[index][0]]
        if elementwise:                                  # CuPy broadcasts them; outputs must have the shape
            if size is not None:
                raise ValueError(f"kernel {self.name}: size given with non-raw arrays")
            shape = numpy.broadcast_shapes(*(args[index].shape for index in elementwise))
            for index in elementwise:
                if index >= len(self.ins) and args[index].shape != shape:
                    raise ValueError(f"kernel {self.name}: out shape {args[index].shape} is mismatched "
                                     f"(the broadcast shape is {shape})")
            size = int(numpy.prod(shape))
        elif size is None:
            raise ValueError(f"kernel {self.name}: no non-raw array, so size= is needed")
        pointers, buffers, write_back = [], [], []
        for index, ((raw, kind, name), arg) in enumerate(zip(params, args)):
            if index not in arrays:
                if isinstance(arg, numpy.ndarray):
                    raise TypeError(f"kernel {self.name}: {name} is a typed scalar, got an array")
                pointers.append(C_TYPES[kind][1](arg))
                continue
            data = arg if raw or index >= len(self.ins) else numpy.broadcast_to(arg, shape)   # outputs: exact shape
            buffer = numpy.ascontiguousarray(data)
            if index >= len(self.ins) and not arg.flags.c_contiguous:
                write_back.append((arg, buffer))
            buffers.append(buffer)                               # alive until the call returns
            pointers.append(ctypes.c_void_p(buffer.ctypes.data))
        self._library(types_)(ctypes.c_longlong(size), *pointers)
        for original, buffer in write_back:
            original[...] = buffer
        outs = args[len(self.ins):]
        if self.no_return:
            return None
        return outs[0] if len(outs) == 1 and not self.return_tuple else tuple(outs)


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


