"""The fused SGD-with-momentum update (``minidnn/training/kernels.py``) gives the bits of the
array version, ``SGD.gradient`` + ``SGD.update``: its C++ source compiled for the host here, the
CUDA kernel itself on CuPy where a GPU is there. Several steps of random gradients, with and
without weight decay and Nesterov, float64 and float32.
"""
import ctypes

import numpy
import pytest

from minidnn import backend
from minidnn.layers import Parameter
from minidnn.training import SGD, kernels

from support.host_kernels import bits, compile_host, pointer
from support.strict_xp import strict

HOST = r"""
%(preamble)s
template <typename T>
static void run(int64_t n, const T* gs, double lam, double lr, double mu, bool nesterov, T* vs, T* ws) {
    for (int64_t i = 0; i < n; ++i) {
        const T g = gs[i];
        T& v = vs[i];
        T& w = ws[i];
        %(operation)s
    }
}
extern "C" void sgd_float64(int64_t n, const double* g, double lam, double lr, double mu, bool nesterov,
                            double* v, double* w) { run<double>(n, g, lam, lr, mu, nesterov, v, w); }
extern "C" void sgd_float32(int64_t n, const float* g, double lam, double lr, double mu, bool nesterov,
                            float* v, float* w) { run<float>(n, g, lam, lr, mu, nesterov, v, w); }
"""
SETTINGS = [(0.0, False), (1e-3, False), (1e-3, True), (0.0, True)]     # (weight decay, Nesterov)


def compile_sgd(tmp_path, preamble=kernels.PREAMBLE):
    return compile_host(tmp_path, HOST % {"preamble": preamble, "operation": kernels.OPERATION})


def gradients(dtype, steps=4, shape=(37, 11)):
    """Random gradients with a few exact zeros, −0s and large values among them."""
    rng = numpy.random.default_rng(3)
    g = rng.standard_normal((steps,) + shape) * 10.0 ** rng.integers(-6, 3, (steps,) + shape)
    g[:, 0, :3] = [0.0, -0.0, 1e30]
    return g.astype(dtype)


def run_both(fused_step, dtype, weight_decay, nesterov):
    """The same steps by SGD on NumPy and by ``fused_step(g, lam, v, w)``; assert equal bits each step."""
    w0 = numpy.random.default_rng(4).standard_normal((37, 11)).astype(dtype)
    p = Parameter(w0.copy(), decay=True)
    optimizer = SGD({"w": p}, lr=0.05, momentum=0.9, nesterov=nesterov, weight_decay=weight_decay)
    w, v = w0.copy(), numpy.zeros_like(w0)
    for i, g in enumerate(gradients(dtype)):
        optimizer.zero_grad()
        p.accumulate(g.copy())
        optimizer.step()
        fused_step(g, weight_decay, v, w)
        assert (bits(w) == bits(p.data)).all(), f"step {i}: weights differ"
        assert (bits(v) == bits(optimizer.state[("w", "velocity")])).all(), f"step {i}: velocities differ"


def host_step(library, optimizer_settings):
    lr, mu, nesterov = optimizer_settings

    def step(g, lam, v, w):
        function = getattr(library, f"sgd_{g.dtype.name}")
        function(ctypes.c_int64(g.size), pointer(g), ctypes.c_double(lam), ctypes.c_double(lr), ctypes.c_double(mu),
                 ctypes.c_bool(nesterov), pointer(v), pointer(w))
    return step


@pytest.mark.parametrize("dtype", [numpy.float64, numpy.float32])
@pytest.mark.parametrize("weight_decay, nesterov", SETTINGS)
def test_host_compiled_update_gives_numpys_bits(tmp_path, dtype, weight_decay, nesterov):
    run_both(host_step(compile_sgd(tmp_path), (0.05, 0.9, nesterov)), dtype, weight_decay, nesterov)


def test_the_kernel_is_not_used_off_cupy(monkeypatch):
    """On NumPy and on the strict stand-in, SGD takes the array path (the kernel would fail here)."""
    def no_kernel():
        raise AssertionError("the CUDA kernel was asked for off CuPy")
    monkeypatch.setattr(kernels, "sgd_momentum_kernel", no_kernel)
    for module in (numpy, strict):
        p = Parameter(module.asarray(numpy.ones((3, 2))), decay=True)
        optimizer = SGD({"w": p}, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)
        p.accumulate(module.asarray(numpy.full((3, 2), 0.5)))
        optimizer.step()
        numpy.testing.assert_allclose(backend.to_numpy(p.data), 1 - 0.1 * (0.9 + 1) * (0.5 + 1e-3), rtol=1e-12)


def test_a_reordered_update_is_caught(tmp_path):
    """Negative control: θ + (μv − ηg') computed as (θ + μv) − ηg' differs in the last bits, and is noticed."""
    wrong = kernels.PREAMBLE.replace("w + (mu * v - lr * gd)", "(w + mu * v) - lr * gd")
    assert wrong != kernels.PREAMBLE
    with pytest.raises(AssertionError):
        run_both(host_step(compile_sgd(tmp_path, wrong), (0.05, 0.9, True)), numpy.float64, 1e-3, True)


@pytest.mark.parametrize("use_kernel", [True, False], ids=["kernel", "array code"])
@pytest.mark.parametrize("dtype", [numpy.float64, numpy.float32])
@pytest.mark.parametrize("weight_decay, nesterov", SETTINGS)
def test_cupy_gives_numpys_bits(dtype, weight_decay, nesterov, use_kernel, monkeypatch, cupy_backend):
    """The CUDA kernel, and CuPy's array code (element-wise operations round as NumPy's do)."""
    cupy = cupy_backend
    launches = []
    kernel = kernels.sgd_momentum_kernel()
    monkeypatch.setattr(kernels, "sgd_momentum_kernel", lambda: launches.append(1) or kernel)

    def on_gpu(g, lam, v, w):
        """One step of SGD on CuPy arrays (fused), copied back into v and w."""
        p = Parameter(cupy.asarray(w), decay=True)
        optimizer = SGD({"w": p}, lr=0.05, momentum=0.9, nesterov=nesterov, weight_decay=lam)
        optimizer.state[("w", "velocity")] = cupy.asarray(v)
        p.accumulate(cupy.asarray(g))
        optimizer.step()
        v[...], w[...] = cupy.asnumpy(optimizer.state[("w", "velocity")]), cupy.asnumpy(p.data)
    with backend.use_fused_kernels(use_kernel):
        run_both(on_gpu, dtype, weight_decay, nesterov)
    assert bool(launches) == use_kernel                 # the kernel ran, or the array code did
