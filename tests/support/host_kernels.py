"""Compile a CUDA kernel's C++ source for the host, so its arithmetic is checked without a GPU.

minidnn's CuPy kernels keep their device code in plain C++ (``__device__`` functions templated
on the float type); defined away, ``__device__`` leaves code any C++ compiler takes. Compiled
without contraction of a·b + c (``-ffp-contract=off``, as the kernels' ``--fmad=false``), the
results can be compared with NumPy's bit for bit.
"""
import ctypes
import shutil
import subprocess

import numpy
import pytest

PROLOGUE = "#include <cmath>\n#include <cstdint>\n#define __device__\n"


def compile_host(tmp_path, source):
    """``source`` (after the prologue) as a loaded shared library; skips without a C++ compiler."""
    compiler = shutil.which("g++") or shutil.which("clang++")
    if compiler is None:
        pytest.skip("no host C++ compiler (g++ or clang++) to compile the kernel's source")
    path, library = tmp_path / "kernel.cpp", tmp_path / "kernel.so"
    path.write_text(PROLOGUE + source)
    subprocess.run([compiler, "-O2", "-ffp-contract=off", "-shared", "-fPIC", "-o", str(library), str(path)],
                   check=True, capture_output=True)
    return ctypes.CDLL(str(library))


def pointer(a):
    """A NumPy array's data as a ctypes pointer (the array must stay alive and contiguous)."""
    assert a.flags.c_contiguous
    return ctypes.c_void_p(a.ctypes.data)


def bits(a):
    """An array's bytes as unsigned integers (NaNs and signed zeros compared exactly)."""
    a = numpy.asarray(a)
    return a.view(numpy.uint8 if a.dtype == bool else numpy.dtype(f"u{a.dtype.itemsize}"))
