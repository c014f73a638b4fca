"""The fused Moré–Thuente step (``linesearch_kernel.py``) gives the bits of the NumPy version.

The kernel's C++ source (its preamble and its per-row operation, as written) is compiled with
the host's C++ compiler, so this runs on any machine with one; on CuPy with a GPU, the kernel
itself is checked the same way. Both drive a few thousand line searches on random quartics
(φ'(0) < 0) to their ends, comparing every field of the state after every step, with L-BFGS-B's
ftol = 1e-3 and with ftol = 0.3, where stage 1's modified function ψ comes into play; a probe
asserts that every path of the step was taken.
"""
import collections
import ctypes

import numpy
import pytest

from minidnn import backend
from minidnn.attacks import linesearch, linesearch_kernel
from minidnn.attacks.linesearch import MoreThuente

from support.host_kernels import bits, compile_host

N = 3000
STATE = ("stp", "width", "width1", "stx", "sty", "stmin", "stmax", "fx", "fy", "gx", "gy", "brackt", "stage1")
READ_ONLY = ("stpmax", "finit", "ginit", "gtest")

# The kernel's operation in a host loop: the same names (r, f, g, done, the state arrays) as in CuPy.
HOST = r"""
%(preamble)s
template <typename T>
static void run(int64_t k, const int64_t* rows, const T* fs, const T* gs, double gtol, double xtol,
                const T* stpmax, const T* finit, const T* ginit, const T* gtest, T* stp, T* width, T* width1,
                T* stx, T* sty, T* stmin, T* stmax, T* fx, T* fy, T* gx, T* gy, bool* brackt, bool* stage1,
                bool* dones) {
    for (int64_t i = 0; i < k; ++i) {
        const int64_t r = rows[i];
        const T f = fs[i], g = gs[i];
        bool& done = dones[i];
        %(operation)s
    }
}
#define ARGS(T) int64_t k, const int64_t* rows, const T* fs, const T* gs, double gtol, double xtol, \
    const T* stpmax, const T* finit, const T* ginit, const T* gtest, T* stp, T* width, T* width1, T* stx, \
    T* sty, T* stmin, T* stmax, T* fx, T* fy, T* gx, T* gy, bool* brackt, bool* stage1, bool* dones
#define CALL k, rows, fs, gs, gtol, xtol, stpmax, finit, ginit, gtest, stp, width, width1, stx, sty, stmin, \
    stmax, fx, fy, gx, gy, brackt, stage1, dones
extern "C" void step_float64(ARGS(double)) { run<double>(CALL); }
extern "C" void step_float32(ARGS(float)) { run<float>(CALL); }
extern "C" double max_float64(double a, double b) { return mt_max(a, b); }
extern "C" double min_float64(double a, double b) { return mt_min(a, b); }
extern "C" float max_float32(float a, float b) { return mt_max(a, b); }
extern "C" float min_float32(float a, float b) { return mt_min(a, b); }
"""


def compile_line_search(tmp_path, preamble=linesearch_kernel.PREAMBLE):
    """The kernel source, with the host loop above, as a shared library."""
    return compile_host(tmp_path, HOST % {"preamble": preamble, "operation": linesearch_kernel.OPERATION})


def host_stepper(library):
    """step(search, f, g, rows) running the compiled source on a NumPy MoreThuente's arrays."""
    def step(search, f, g, rows):
        dtype = search.stp.dtype
        arrays = [numpy.ascontiguousarray(rows, dtype=numpy.int64), f, g]
        done = numpy.empty(rows.shape, dtype=bool)
        pointers = [ctypes.c_void_p(a.ctypes.data) for a in arrays]
        pointers += [ctypes.c_double(search.gtol), ctypes.c_double(search.xtol)]
        pointers += [ctypes.c_void_p(getattr(search, k).ctypes.data) for k in READ_ONLY + STATE]
        getattr(library, f"step_{dtype.name}")(ctypes.c_int64(len(rows)), *pointers, ctypes.c_void_p(done.ctypes.data))
        return done
    return step


def quartics(dtype, rng):
    """φ_n(t) = a t + b t² + c t³ + e t⁴ (a < 0, e > 0), a first step and a longest step per row."""
    a = -rng.uniform(0.1, 10, N)
    b = rng.normal(0, 5, N)
    c = rng.normal(0, 3, N)
    e = rng.uniform(1e-3, 2, N)
    stp = 10.0 ** rng.uniform(-3, 1, N)
    stpmax = numpy.where(rng.random(N) < 0.2, stp * rng.uniform(1, 3, N), 1e10)

    def phi(t, rows):
        """φ(t), φ'(t) of ``rows`` (in float64, then rounded to dtype)."""
        t, a_, b_, c_, e_ = t.astype(numpy.float64), a[rows], b[rows], c[rows], e[rows]
        return ((a_ * t + b_ * t ** 2 + c_ * t ** 3 + e_ * t ** 4).astype(dtype),
                (a_ + 2 * b_ * t + 3 * c_ * t ** 2 + 4 * e_ * t ** 3).astype(dtype))
    f0, g0 = phi(numpy.zeros(N), numpy.arange(N))
    return phi, f0, g0, stp.astype(dtype), stpmax.astype(dtype)


def count_paths(probe, before, after, f, g, done):
    """Tally the paths the NumPy step took for these rows: ψ's shift, bisection, the clip to stpmax."""
    go = ~done
    ftest = before["finit"] + before["stp"] * before["gtest"]
    stage1 = before["stage1"] & ~((f <= ftest) & (g >= 0))
    probe["modified (ψ)"] += int((go & stage1 & (f <= before["fx"]) & (f > ftest)).sum())
    probe["bisection"] += int((go & after["brackt"] & (abs(after["sty"] - after["stx"]) >= 0.66 * before["width1"])).sum())
    probe["clipped to stpmax"] += int((go & (after["stp"] == before["stpmax"])).sum())
    probe["accepted"] += int(done.sum())


def run_searches(step, dtype, xp=numpy, ftol=1e-3, seed=0, probe=None):
    """Drive the same searches with MoreThuente.step (NumPy) and ``step`` (on xp's arrays); assert
    that every field agrees bit for bit after every step. Returns the number of rounds."""
    phi, f0, g0, stp, stpmax = quartics(dtype, numpy.random.default_rng(seed))
    reference = MoreThuente(f0, g0, stp, stpmax, ftol=ftol)
    twin = MoreThuente(*(xp.asarray(a) for a in (f0, g0, stp, stpmax)), ftol=ftol)
    rows = numpy.arange(N)
    rounds = 0
    while rows.size and rounds < 40:
        f, g = phi(reference.stp[rows], rows)
        before = {k: getattr(reference, k)[rows] for k in MoreThuente.FIELDS}
        done = reference.step(f, g, rows)
        if probe is not None:
            count_paths(probe, before, {k: getattr(reference, k)[rows] for k in MoreThuente.FIELDS}, f, g, done)
        twin_done = step(twin, xp.asarray(f), xp.asarray(g), xp.asarray(rows))
        numpy.testing.assert_array_equal(backend.to_numpy(twin_done), done)
        for name in STATE:
            ours = backend.to_numpy(getattr(twin, name))
            where = numpy.flatnonzero(bits(ours) != bits(getattr(reference, name)))
            assert where.size == 0, (f"{dtype.__name__} round {rounds}: {name} differs on rows {where[:5]}: "
                                     f"{ours[where[:5]]} vs {getattr(reference, name)[where[:5]]}")
        rows, rounds = rows[~done], rounds + 1
    return rounds


@pytest.fixture
def dcstep_cases(monkeypatch):
    """A Counter of dcstep's four cases (3 and 4 split by whether the minimum is bracketed)."""
    cases = collections.Counter()
    original = linesearch.dcstep

    def recording(stx, fx, dx, sty, fy, dy, stp, fp, dp, brackt, stpmin, stpmax):
        higher = fp > fx
        opposite = ~higher & (dp * numpy.sign(dx) < 0)
        decreasing = ~higher & ~opposite & (abs(dp) < abs(dx))
        rest = ~higher & ~opposite & ~decreasing
        for name, mask in (("1", higher), ("2", opposite), ("3 bracketed", decreasing & brackt),
                           ("3 not bracketed", decreasing & ~brackt), ("4 bracketed", rest & brackt),
                           ("4 not bracketed", rest & ~brackt)):
            cases[f"dcstep case {name}"] += int(mask.sum())
        return original(stx, fx, dx, sty, fy, dy, stp, fp, dp, brackt, stpmin, stpmax)
    monkeypatch.setattr(linesearch, "dcstep", recording)
    return cases


@pytest.mark.parametrize("dtype", [numpy.float64, numpy.float32])
def test_host_compiled_kernel_gives_numpys_bits(tmp_path, dtype, dcstep_cases):
    step = host_stepper(compile_line_search(tmp_path))
    probe = collections.Counter()
    for ftol in (1e-3, 0.3):
        assert run_searches(step, dtype, ftol=ftol, probe=probe) >= 5
    # the searches took every path of the step
    paths = dict(probe, **dcstep_cases)
    assert len(paths) == 10 and min(paths.values()) > 0, paths


@pytest.mark.parametrize("dtype", [numpy.float64, numpy.float32])
def test_host_compiled_max_min_are_numpys(tmp_path, dtype):
    """NaN operands and ties (±0) come out as numpy.maximum / numpy.minimum give them here."""
    library = compile_line_search(tmp_path)
    c_type = ctypes.c_double if dtype == numpy.float64 else ctypes.c_float
    special = numpy.array([-0.0, 0.0, 1.0, -1.0, numpy.inf, -numpy.inf, numpy.nan, -numpy.nan], dtype=dtype)
    for name, ufunc in (("max", numpy.maximum), ("min", numpy.minimum)):
        function = getattr(library, f"{name}_{dtype.__name__}")
        function.restype, function.argtypes = c_type, [c_type, c_type]
        for a in special:
            for b in special:
                ours = numpy.array(function(a, b), dtype=dtype)
                assert bits(ours) == bits(ufunc(a, b)), (name, a, b, ours, ufunc(a, b))


def test_a_reordered_sum_is_caught(tmp_path):
    """Negative control: the comparison notices a kernel that only adds in another order (θ = 3(f_x − f_p)/(s_p − s_x)
    + (d_x + d_p)), a difference in the last bits."""
    wrong = linesearch_kernel.PREAMBLE.replace("(stp - stx) + dx + dp;", "(stp - stx) + (dx + dp);")
    assert wrong != linesearch_kernel.PREAMBLE
    with pytest.raises(AssertionError):
        run_searches(host_stepper(compile_line_search(tmp_path, wrong)), numpy.float64)


def test_a_kernel_without_the_psi_shift_is_caught(tmp_path):
    """Negative control: stage 1's shift to ψ dropped is noticed (with ftol = 0.3, where it happens)."""
    wrong = linesearch_kernel.PREAMBLE.replace("const F shift = modified ? gtest : F(0);", "const F shift = F(0);")
    assert wrong != linesearch_kernel.PREAMBLE
    with pytest.raises(AssertionError):
        run_searches(host_stepper(compile_line_search(tmp_path, wrong)), numpy.float64, ftol=0.3)


@pytest.mark.parametrize("dtype", [numpy.float64, numpy.float32])
def test_cupy_kernel_gives_numpys_bits(dtype, monkeypatch, cupy_backend):
    cupy = cupy_backend
    launches = []
    fused_step = linesearch_kernel.fused_step
    monkeypatch.setattr(linesearch_kernel, "fused_step", lambda *args: launches.append(1) or fused_step(*args))
    for ftol in (1e-3, 0.3):
        assert run_searches(lambda search, f, g, rows: search.step(f, g, rows), dtype, xp=cupy, ftol=ftol) >= 5
    assert launches                                  # the kernel ran, not the array version
