"""Compile a CUDA kernel's C++ source for the host, so its arithmetic is checked without a GPU.

minidnn's CuPy kernels keep their device code in plain C++ (``__device__`` functions templated
on the float type); defined away, ``__device__`` leaves code any C++ compiler takes. Compiled
without contraction of a·b + c (``-ffp-contract=off``, as the kernels' ``--fmad=false``), the
results can be compared with NumPy's bit for bit.
"""
import ctypes
import os
import shutil
import subprocess

import numpy

PROLOGUE = "#include <cmath>\n#include <cstdint>\n#define __device__\n"
# no contraction of a*b + c, as the kernels' --fmad=false
STRICT_FLAGS = ("-O2", "-ffp-contract=off")


def compiler():
    """The host C++ compiler (g++ or clang++), or None."""
    return shutil.which("g++") or shutil.which("clang++")


def build(source, directory, flags=STRICT_FLAGS):
    """Compile ``source`` (the prologue added) into a shared library in ``directory``; load it.
    Raises RuntimeError with the compiler's message when it does not compile."""
    path, library = os.path.join(directory, "kernel.cpp"), os.path.join(directory, "kernel.so")
    with open(path, "w", encoding="ascii") as f:      # as CuPy may, fail on non-ASCII source
        f.write(PROLOGUE + source)
    result = subprocess.run([compiler(), *flags, "-shared", "-fPIC", "-o", library, path],
                            capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"the kernel's source does not compile:\n{result.stderr}")
    return ctypes.CDLL(library)


def compile_host(tmp_path, source):
    """``source`` (after the prologue) as a loaded shared library; skips without a C++ compiler."""
    if compiler() is None:
        import pytest
        pytest.skip("no host C++ compiler (g++ or clang++) to compile the kernel's source")
    return build(source, str(tmp_path))


def pointer(a):
    """A NumPy array's data as a ctypes pointer (the array must stay alive and contiguous)."""
    assert a.flags.c_contiguous
    return ctypes.c_void_p(a.ctypes.data)


def bits(a):
    """An array's bytes as unsigned integers (NaNs and signed zeros compared exactly)."""
    a = numpy.asarray(a)
    return a.view(numpy.uint8 if a.dtype == bool else numpy.dtype(f"u{a.dtype.itemsize}"))


def same_bits(a, b):
    """Equal bits, or both NaN (which NaN an operation on two NaNs returns is the hardware's choice)."""
    a, b = numpy.asarray(a), numpy.asarray(b)
    return bool(((bits(a) == bits(b)) | (numpy.isnan(a) & numpy.isnan(b))).all())


def record_calls(monkeypatch, module, *names):
    """Wrap ``module``'s functions ``names`` (kernel entry points) so that each call appends its name to
    the returned list: which code ran, the kernel or the array code."""
    calls = []
    for name in names:
        function = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, f=function, name=name: calls.append(name) or f(*a))
    return calls
