"""Every CUDA kernel compiles for the GPU: nvcc (where the CUDA toolkit is installed, no GPU needed)
builds each kernel module's kernels, float32 and float64, as CUDA device code (PTX for compute
capability 9.0) with the module's own options. The host-compiled tests check the arithmetic; this
checks what only a CUDA compiler sees (device functions, overloads of the math functions), so that a
GPU session does not find a kernel that fails to compile and with it every kernel turned off."""
import importlib
import shutil
import subprocess
import types

import pytest

from support.emulated_cupy import ElementwiseKernel
from test_kernel_sources import KERNEL_MODULES

NVCC = shutil.which("nvcc")
pytestmark = pytest.mark.skipif(NVCC is None, reason="no CUDA compiler (nvcc) here")


def compile_for_gpu(module, tmp_path):
    """nvcc on a kernel module's KERNELS (each in float32 and float64); returns (result, PTX text)."""
    units = []
    for kernel_name, (in_params, out_params, operation) in module.KERNELS.items():
        kernel = ElementwiseKernel(in_params, out_params, operation, kernel_name, preamble=module.PREAMBLE,
                                   options=module.OPTIONS)
        for dtype in ("float32", "float64"):
            body = kernel.source({"T": dtype, "I": "int64"}, device=True, function=f"{kernel_name}_{dtype}")
            units.append(f"namespace {kernel_name}_{dtype} {{\n{body}}}\n")
    source, ptx = tmp_path / "kernels.cu", tmp_path / "kernels.ptx"
    source.write_text("".join(units), encoding="ascii")
    result = subprocess.run([NVCC, "-arch=compute_90", "--ptx", *module.OPTIONS, "-o", str(ptx), str(source)],
                            capture_output=True, text=True)
    return result, (ptx.read_text() if result.returncode == 0 else "")


@pytest.mark.parametrize("name", KERNEL_MODULES)
def test_kernels_compile_with_nvcc(name, tmp_path):
    module = importlib.import_module(name)
    assert module.KERNELS, f"{name} declares no kernels"
    result, ptx = compile_for_gpu(module, tmp_path)
    assert result.returncode == 0, f"{name} does not compile for the GPU:\n{result.stderr}"
    for kernel_name in module.KERNELS:
        assert f"{kernel_name}_float32" in ptx and f"{kernel_name}_float64" in ptx


def test_a_kernel_that_does_not_compile_is_caught(tmp_path):
    """Negative control: a kernel calling a function its preamble does not define."""
    broken = types.SimpleNamespace(PREAMBLE="template <typename F> __device__ F twice(F x) { return halve(x) * 4; }\n",
                                   OPTIONS=("--fmad=false",), KERNELS={"twice": ("T x", "T y", "y = twice<T>(x);")})
    result, _ = compile_for_gpu(broken, tmp_path)
    assert result.returncode != 0 and "halve" in result.stderr
