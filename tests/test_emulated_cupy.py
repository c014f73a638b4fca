"""The emulated CuPy (support/emulated_cupy.py) keeps CuPy's ElementwiseKernel rules that matter for
catching a kernel wrapper's mistakes on the CPU: outputs of the broadcast shape, dtypes per placeholder,
device arrays only, and CUDA's contraction of a*b + c unless a kernel asks for --fmad=false."""
import numpy
import pytest

from support import emulated_cupy, host_kernels

if host_kernels.compiler() is None:
    pytest.skip("no host C++ compiler for the emulated kernels", allow_module_level=True)

cupy = emulated_cupy.module()
AXPY = ("T a, T b, T c", "T y", "y = a * b + c;")


def test_broadcasting_and_the_output_shape_follow_cupy():
    kernel = cupy.ElementwiseKernel(*AXPY, name="axpy", options=("--fmad=false",))
    a, b = cupy.asarray(numpy.arange(6.0).reshape(2, 3)), cupy.asarray(numpy.array([1.0, 2.0, 3.0]))
    y = cupy.empty((2, 3))
    kernel(a, b, b, y)                                           # (3,) broadcast against (2, 3)
    numpy.testing.assert_array_equal(cupy.asnumpy(y), numpy.arange(6.0).reshape(2, 3) * [1, 2, 3] + [1, 2, 3])
    with pytest.raises(ValueError, match="shape"):
        kernel(a, b, b, cupy.empty(6))                          # same size, other shape: CuPy refuses it
    with pytest.raises(ValueError, match="out shape"):
        kernel(a, b, b, cupy.empty((1, 3)))                     # an output that would need broadcasting
    with pytest.raises(TypeError, match="device array"):
        kernel(numpy.ones((2, 3)), b, b, y)                      # a host array
    with pytest.raises(TypeError, match="float32"):
        kernel(a.astype(numpy.float32), b, b, y)                 # T bound to two dtypes


def test_a_kernel_without_fmad_false_contracts_as_cuda_does():
    if not emulated_cupy._host_has_fma():
        pytest.skip("this CPU has no FMA instructions")
    rng = numpy.random.default_rng(0)
    a, b, c = (cupy.asarray(rng.standard_normal(1000)) for _ in range(3))
    outputs = {}
    for options in [("--fmad=false",), ()]:
        y = cupy.empty(1000)
        cupy.ElementwiseKernel(*AXPY, name="axpy", options=options)(a, b, c, y)
        outputs[options] = cupy.asnumpy(y)
    numpy.testing.assert_array_equal(outputs[("--fmad=false",)], a * b + c)       # NumPy's rounding
    assert (outputs[()] != a * b + c).any()                                        # fused: rounded once


def test_typed_scalars_refuse_arrays_and_raw_kernels_need_a_size():
    kernel = cupy.ElementwiseKernel("raw T x, float64 scale", "raw T y", "y[i] = x[i] * scale;", name="scale")
    x, y = cupy.asarray(numpy.arange(4.0)), cupy.empty(4)
    kernel(x, 2.0, y, size=4)
    numpy.testing.assert_array_equal(cupy.asnumpy(y), [0.0, 2.0, 4.0, 6.0])
    with pytest.raises(TypeError, match="typed scalar"):
        kernel(x, cupy.asarray(2.0), y, size=4)
    with pytest.raises(ValueError, match="size"):
        kernel(x, 2.0, y)
