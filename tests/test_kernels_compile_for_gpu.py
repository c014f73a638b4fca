"""Every CUDA kernel compiles for the GPU, checked without one: nvcc (where the CUDA toolkit is
installed) builds each kernel module's kernels, float32 and float64 (and int64/int32 labels), into
device code for compute capability 9.0 with the module's own options, each in the shape CuPy gives
it (``emulated_cupy.ElementwiseKernel.source``: raw parameters as CArray-like objects indexed by a
flat index, const inputs, ``ptrdiff_t i``, ``extern "C" __global__`` under the kernel's name). The
host-compiled tests check the arithmetic; this checks what only a CUDA compiler sees (device
functions, the math functions' overloads). It is strong evidence, not proof, that CuPy compiles them:
CuPy uses NVRTC with its own headers (not the host's, which nvcc includes) and the real CArray.
"""
import importlib
import itertools
import re
import shutil
import subprocess
import types

import pytest

from support.emulated_cupy import ElementwiseKernel
from support.kernel_modules import KERNEL_MODULES

NVCC = shutil.which("nvcc")


def nvcc_release():
    """nvcc's (major, minor) release, or None."""
    if NVCC is None:
        return None
    found = re.search(r"release (\d+)\.(\d+)", subprocess.run([NVCC, "--version"], capture_output=True,
                                                              text=True, timeout=60).stdout)
    return (int(found.group(1)), int(found.group(2))) if found else None


pytestmark = pytest.mark.skipif((nvcc_release() or (0, 0)) < (11, 8),
                                reason="no CUDA compiler (nvcc 11.8 or newer, for sm_90) here")


def compile_for_gpu(module, tmp_path):
    """nvcc on every kernel of a module (one file per kernel and types, as CuPy compiles them)."""
    files = []
    for kernel_name, (in_params, out_params, operation) in module.KERNELS.items():
        kernel = ElementwiseKernel(in_params, out_params, operation, kernel_name, preamble=module.PREAMBLE,
                                   options=module.OPTIONS)
        for float_type, index_type in itertools.product(("float32", "float64"), ("int64", "int32")):
            path = tmp_path / f"{kernel_name}_{float_type}_{index_type}.cu"
            path.write_text(kernel.source({"T": float_type, "I": index_type}, device=True, function=kernel_name),
                            encoding="ascii")
            files.append(path)
    return subprocess.run([NVCC, "-cubin", "-arch=sm_90", *module.OPTIONS, *[f.name for f in files]],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600), files


@pytest.mark.parametrize("name", KERNEL_MODULES)
def test_kernels_compile_with_nvcc(name, tmp_path):
    module = importlib.import_module(name)
    assert module.KERNELS, f"{name} declares no kernels"
    result, files = compile_for_gpu(module, tmp_path)
    assert result.returncode == 0, f"{name} does not compile for the GPU:\n{result.stderr}"
    assert all(f.with_suffix(".cubin").stat().st_size > 0 for f in files)


@pytest.mark.parametrize("preamble, params, message", [
    ("template <typename F> F twice(F x) { return x + x; }", "T x", "__host__"),
    ("template <typename F> __device__ F twice(const F* x) { return x[0] + x[0]; }", "raw T x", "no instance"),
    ("template <typename F, typename X> __device__ F twice(X x) { return *(x + 1) + x[0]; }", "raw T x",
     "no operator")],
    ids=["a host function", "a raw parameter taken as a pointer", "pointer arithmetic on a raw parameter"])
def test_a_kernel_that_cupy_would_not_compile_is_caught(tmp_path, preamble, params, message):
    """Negative controls: code that the host compiler takes but CUDA, or CuPy's binding, does not."""
    broken = types.SimpleNamespace(PREAMBLE=preamble + "\n", OPTIONS=("--fmad=false",),
                                   KERNELS={"twice": (params, "T y", "y = twice<T>(x);")})
    result, _ = compile_for_gpu(broken, tmp_path)
    assert result.returncode != 0 and message in result.stderr, result.stderr
