"""A strict stand-in for CuPy, so the CuPy code path is checked on any machine.

``StrictArray`` wraps a ``numpy.ndarray`` and behaves like ``cupy.ndarray`` where it
matters to minidnn:

* operators, indexing and methods work and return strict arrays; reductions return
  0-d arrays, not scalars (as CuPy does); ``float()``, ``int()``, ``bool()`` of a
  one-element array and ``.item()`` are allowed (CuPy synchronises and allows them);
* anything that would silently move data between host and device is a TypeError:
  mixing a strict array with a plain ``numpy.ndarray`` (operators, indices, assigned
  values, module functions), implicit conversion (``__array__``, ``numpy.asarray``),
  and NumPy functions or ufuncs given a plain ndarray beside a strict one. A NumPy
  function given only strict arrays dispatches to this module, as CuPy's
  ``__array_function__`` / ``__array_ufunc__`` do (and fails if the module lacks it);
* explicit transfers work: ``strict.asarray(host)`` copies in, ``a.get()`` and
  ``strict.asnumpy(a)`` copy out.

Indexing with, or assigning, a host array is refused although CuPy quietly copies it:
on a GPU that is a hidden transfer per call, which library code should make explicit.

Importing this module registers it with the backend as "strict":
``with minidnn.use_backend("strict"): ...`` and ``net.astype(module=strict)``.
"""
import operator
import types

import numpy

from minidnn import backend

IMPLICIT = ("implicit conversion between a strict (device) array and NumPy is not allowed, "
            "as with CuPy: copy explicitly with xp.asarray(host) or a.get() / xp.asnumpy(a)")

_SCALARS = (bool, int, float, complex, numpy.generic)


def _refuse(where):
    raise TypeError(f"{where}: {IMPLICIT}")


def _unwrap(value, where):
    """The NumPy array behind strict arrays (recursively in lists and tuples); refuses host arrays."""
    if isinstance(value, StrictArray):
        return value._a
    if isinstance(value, numpy.ndarray):
        _refuse(f"{where} was given a numpy.ndarray")
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v, where) for v in value)
    return value


def _wrap(value):
    """NumPy results as strict arrays; NumPy scalars become 0-d arrays, as CuPy returns."""
    if isinstance(value, numpy.ndarray):
        return StrictArray(value)
    if isinstance(value, numpy.generic):
        return StrictArray(numpy.asarray(value))
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def _operand(value, where):
    """The right-hand side of an operator: a strict array or a scalar, never a host array."""
    if isinstance(value, StrictArray):
        return value._a
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, numpy.ndarray):
        _refuse(f"operator {where} between a strict array and a numpy.ndarray")
    raise TypeError(f"operator {where}: unsupported operand type {type(value).__name__}")


class StrictArray:
    """A NumPy array that refuses to meet plain NumPy arrays (see the module docstring)."""

    __slots__ = ("_a",)
    __hash__ = None

    def __init__(self, array):
        if not isinstance(array, numpy.ndarray):
            raise TypeError(f"StrictArray wraps a numpy.ndarray, got {type(array).__name__}")
        self._a = array

    # ---- attributes ------------------------------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    flags = property(lambda self: self._a.flags)          # c_contiguous, f_contiguous, ... (as cupy's)
    T = property(lambda self: StrictArray(self._a.T))

    # ---- explicit and implicit transfers ---------------------------------------------------------
    def get(self):
        """A host copy (cupy.ndarray.get)."""
        return self._a.copy()

    def __array__(self, dtype=None, copy=None):
        _refuse("__array__ (numpy.asarray / numpy.array of a strict array)")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        where = f"numpy.{ufunc.__name__}"
        args = _unwrap(inputs, where)
        kwargs = {k: _unwrap(v, where) for k, v in kwargs.items()}
        return _wrap(getattr(ufunc, method)(*args, **kwargs))

    def __array_function__(self, func, types_, args, kwargs):
        where = f"numpy.{func.__name__}"
        _unwrap((args, tuple(kwargs.values())), where)        # refuses host arrays among the arguments
        impl = getattr(module, func.__name__, None)
        if impl is None:
            raise TypeError(f"{where} has no strict (CuPy) counterpart here")
        return impl(*args, **kwargs)

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __bool__(self):
        return bool(self._a)

    def __complex__(self):
        return complex(self._a)

    def item(self):
        return self._a.item()

    def tolist(self):
        return self._a.tolist()

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(row) for row in self._a)

    def __repr__(self):
        return f"strict.{self._a!r}"

    # ---- indexing ---------------------------------------------------------------------------------
    def __getitem__(self, key):
        return _wrap(self._a[_unwrap(key, "indexing")])

    def __setitem__(self, key, value):
        self._a[_unwrap(key, "indexing")] = _operand(value, "[]=")


def _binary(op, name):
    def forward(self, other):
        return _wrap(op(self._a, _operand(other, name)))

    def reflected(self, other):
        return _wrap(op(_operand(other, name), self._a))

    def inplace(self, other):
        op(self._a, _operand(other, name), out=self._a)
        return self
    return forward, reflected, inplace


for _name, _ufunc in [("add", numpy.add), ("sub", numpy.subtract), ("mul", numpy.multiply),
                      ("truediv", numpy.true_divide), ("floordiv", numpy.floor_divide),
                      ("mod", numpy.remainder), ("pow", numpy.power), ("matmul", numpy.matmul),
                      ("and", numpy.bitwise_and), ("or", numpy.bitwise_or), ("xor", numpy.bitwise_xor)]:
    _f, _r, _i = _binary(_ufunc, _name)
    setattr(StrictArray, f"__{_name}__", _f)
    setattr(StrictArray, f"__r{_name}__", _r)
    if _name != "matmul":
        setattr(StrictArray, f"__i{_name}__", _i)

for _name, _op in [("lt", operator.lt), ("le", operator.le), ("gt", operator.gt), ("ge", operator.ge),
                   ("eq", operator.eq), ("ne", operator.ne)]:
    setattr(StrictArray, f"__{_name}__", _binary(_op, _name)[0])

for _name, _op in [("neg", operator.neg), ("pos", operator.pos), ("abs", operator.abs),
                   ("invert", operator.invert)]:
    setattr(StrictArray, f"__{_name}__", lambda self, _op=_op: _wrap(_op(self._a)))


def _method(name):
    def method(self, *args, **kwargs):
        where = f"strict array .{name}()"
        return _wrap(getattr(self._a, name)(*_unwrap(args, where),
                                            **{k: _unwrap(v, where) for k, v in kwargs.items()}))
    method.__name__ = name
    return method


for _name in ("reshape", "transpose", "swapaxes", "squeeze", "ravel", "flatten", "view", "astype", "copy",
              "sum", "prod", "mean", "var", "std", "max", "min", "argmax", "argmin", "any", "all", "cumsum",
              "clip", "dot", "take", "repeat", "nonzero", "fill", "round"):
    setattr(StrictArray, _name, _method(_name))


# ---- the module ------------------------------------------------------------------------------------
module = types.ModuleType("strict", "A strict CuPy stand-in (tests/support/strict_xp.py).")
module.ndarray = StrictArray
for _name in ("inf", "nan", "pi", "e", "newaxis", "float16", "float32", "float64", "int8", "int32", "int64",
              "uint8", "bool_", "dtype", "finfo", "iinfo"):
    setattr(module, _name, getattr(numpy, _name))


def asarray(a, dtype=None):
    """Host data (arrays, lists, scalars) copied in, as cupy.asarray does; strict arrays kept."""
    if isinstance(a, StrictArray):
        return a if dtype is None or numpy.dtype(dtype) == a.dtype else a.astype(dtype)
    return StrictArray(numpy.array(_unwrap_host(a), dtype=dtype, copy=True))


def array(a, dtype=None, copy=True):
    if isinstance(a, StrictArray):
        return StrictArray(numpy.array(a._a, dtype=dtype, copy=copy))
    return asarray(a, dtype)


def _unwrap_host(a):
    """Lists may mix scalars and 0-d strict arrays (cupy.asarray([x, y]) works)."""
    if isinstance(a, (list, tuple)):
        return type(a)(_unwrap_host(v) for v in a)
    return a._a if isinstance(a, StrictArray) else a


def asnumpy(a):
    """A host copy of a strict array (cupy.asnumpy); host data passes through."""
    return a._a.copy() if isinstance(a, StrictArray) else numpy.asarray(a)


def _function(name, namespace=numpy):
    numpy_function = getattr(namespace, name)

    def function(*args, **kwargs):
        where = f"strict.{name}"
        return _wrap(numpy_function(*_unwrap(args, where), **{k: _unwrap(v, where) for k, v in kwargs.items()}))
    function.__name__ = name
    return function


def _like_function(name):
    """zeros_like & co.: the prototype must be a strict array (cupy.zeros_like(host) gives a device array,
    which here would hide a mix-up, so it is refused)."""
    numpy_function = getattr(numpy, name)

    def function(a, *args, **kwargs):
        if not isinstance(a, StrictArray):
            _refuse(f"strict.{name} was given a {type(a).__name__}")
        return _wrap(numpy_function(a._a, *args, **kwargs))
    function.__name__ = name
    return function


for _name in ("zeros", "ones", "empty", "full", "arange", "linspace", "eye", "identity",
              "exp", "expm1", "log", "log1p", "log2", "log10", "tanh", "sinh", "cosh", "sqrt", "square", "abs",
              "absolute", "sign", "maximum", "minimum", "fmax", "fmin", "clip", "where", "isfinite", "isnan",
              "isinf", "logical_and", "logical_or", "logical_not", "add", "subtract", "multiply", "divide",
              "true_divide", "power", "negative", "floor", "ceil", "round",
              "sum", "prod", "mean", "var", "std", "max", "min", "amax", "amin", "argmax", "argmin", "all", "any",
              "cumsum", "count_nonzero",
              "dot", "vdot", "matmul", "tensordot", "einsum", "outer", "inner",
              "reshape", "transpose", "moveaxis", "swapaxes", "expand_dims", "squeeze", "ravel",
              "broadcast_to", "concatenate", "stack", "vstack", "hstack", "split", "pad", "take",
              "take_along_axis", "put_along_axis", "repeat", "tile", "flip", "sort", "argsort", "argpartition",
              "nonzero", "flatnonzero", "diagonal",
              "unique", "bincount", "diag", "trace", "allclose", "isclose", "array_equal", "copy"):
    setattr(module, _name, _function(_name))
for _name in ("zeros_like", "ones_like", "empty_like", "full_like"):
    setattr(module, _name, _like_function(_name))
module.asarray, module.array, module.asnumpy = asarray, array, asnumpy
module.linalg = types.SimpleNamespace(**{name: _function(name, numpy.linalg) for name in ("inv", "solve", "eigvalsh")})

backend.register_array_module(StrictArray, module, "strict")
strict = module

__all__ = ["StrictArray", "strict", "module", "asnumpy", "IMPLICIT"]
