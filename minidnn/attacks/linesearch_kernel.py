"""``MoreThuente.step`` (with ``dcstep``) as one CUDA kernel, for CuPy.

The array version of a line-search step is about 300 array operations (ufuncs, ``where``s,
gathers and scatters), each a kernel launch on a GPU, whatever the number of rows. Here the
same arithmetic runs per row in one kernel that reads the row's state, computes the step and
writes the state back in place. On an H100 with 10,000 rows it made no measurable difference
(the GPU's work on the batch's large arrays hid the launches; bench/RESULTS.md); it makes the
step one launch where launches are what costs.

It is the arithmetic of ``linesearch.py`` line for line, in the same order, so that it gives the
same bits as NumPy (up to the payload of a NaN): IEEE operations (+ − × ÷ √) round the same on
both, and the kernel is compiled with ``--fmad=false`` (no fused multiply-adds, which round once
where NumPy rounds twice). Only the branch that ``numpy.where`` would select is computed.
``mt_max``/``mt_min`` return what ``numpy.maximum``/``minimum`` return on x86: a NaN operand if
there is one (the first if both are), and the second operand on ties (so ±0 come out as NumPy's).

The same source compiles with a host C++ compiler (``__device__`` defined away): the tests
check it bit for bit against the NumPy version on the CPU, without a GPU.
"""
from .. import backend
from .linesearch import XTRAPL, XTRAPU, MoreThuente

assert MoreThuente.STPMIN == 0, "the kernel takes stpmin = 0, as L-BFGS-B does"

# Device functions, templated on the float type F (float or double; T is CuPy's name for it).
PREAMBLE = f"#define MT_XTRAPL {XTRAPL!r}\n#define MT_XTRAPU {XTRAPU!r}\n" + r"""
__device__ inline float mt_abs(float a) { return fabsf(a); }
__device__ inline double mt_abs(double a) { return fabs(a); }
__device__ inline float mt_sqrt(float a) { return sqrtf(a); }
__device__ inline double mt_sqrt(double a) { return sqrt(a); }
// numpy.maximum / numpy.minimum: a NaN operand (the first if both are), else the larger / smaller,
// the second on ties
template <typename F> __device__ inline F mt_max(F a, F b) { return (a > b || a != a) ? a : b; }
template <typename F> __device__ inline F mt_min(F a, F b) { return (a < b || a != a) ? a : b; }

// dcstep (MINPACK-2): the safeguarded cubic/quadratic step; updates (stx, fx, dx), (sty, fy, dy),
// stp and brackt in place.
template <typename F>
__device__ void mt_dcstep(F& stx, F& fx, F& dx, F& sty, F& fy, F& dy, F& stp, F fp, F dp, bool& brackt,
                          F stpmin, F stpmax) {
    const F sgnd = dp * (dx / mt_abs(dx));
    const F theta = F(3) * (fx - fp) / (stp - stx) + dx + dp;
    const F s = mt_max(mt_max(mt_abs(theta), mt_abs(dx)), mt_abs(dp));
    const F ts = theta / s, xs = dx / s, ps = dp / s;
    const F disc = ts * ts - xs * ps;
    const bool case1 = fp > fx;                                   // higher value: bracketed
    const bool case2 = !case1 && sgnd < F(0);                     // lower value, opposite slopes
    const bool case3 = !case1 && !case2 && mt_abs(dp) < mt_abs(dx);   // same sign, |slope| decreases
    F stpf;
    if (case1) {
        F gamma = s * mt_sqrt(disc);
        if (stp < stx) gamma = -gamma;
        const F r = ((gamma - dx) + theta) / (((gamma - dx) + gamma) + dp);
        const F stpc = stx + r * (stp - stx);
        const F stpq = stx + ((dx / ((fx - fp) / (stp - stx) + dx)) / F(2)) * (stp - stx);
        stpf = mt_abs(stpc - stx) < mt_abs(stpq - stx) ? stpc : stpc + (stpq - stpc) / F(2);
    } else if (case2) {
        F gamma = s * mt_sqrt(disc);
        if (stp > stx) gamma = -gamma;
        const F r = ((gamma - dp) + theta) / (((gamma - dp) + gamma) + dx);
        const F stpc = stp + r * (stx - stp);
        const F stpq = stp + (dp / (dp - dx)) * (stx - stp);
        stpf = mt_abs(stpc - stp) > mt_abs(stpq - stp) ? stpc : stpq;
    } else if (case3) {
        F gamma = s * mt_sqrt(mt_max(F(0), disc));
        if (stp > stx) gamma = -gamma;
        const F r = ((gamma - dp) + theta) / ((gamma + (dx - dp)) + gamma);
        const F stpc = (r < F(0) && gamma != F(0)) ? stp + r * (stx - stp) : (stp > stx ? stpmax : stpmin);
        const F stpq = stp + (dp / (dp - dx)) * (stx - stp);
        if (brackt) {
            const F closer = mt_abs(stpc - stp) < mt_abs(stpq - stp) ? stpc : stpq;
            const F cap = stp + F(0.66) * (sty - stp);
            stpf = stp > stx ? mt_min(cap, closer) : mt_max(cap, closer);
        } else {
            const F farther = mt_abs(stpc - stp) > mt_abs(stpq - stp) ? stpc : stpq;
            stpf = mt_max(stpmin, mt_min(stpmax, farther));
        }
    } else if (brackt) {                                          // case 4: |slope| does not decrease
        const F theta4 = F(3) * (fp - fy) / (sty - stp) + dy + dp;
        const F s4 = mt_max(mt_max(mt_abs(theta4), mt_abs(dy)), mt_abs(dp));
        const F t4 = theta4 / s4, y4 = dy / s4, p4 = dp / s4;
        F gamma = s4 * mt_sqrt(t4 * t4 - y4 * p4);
        if (stp > sty) gamma = -gamma;
        const F r = ((gamma - dp) + theta4) / (((gamma - dp) + gamma) + dy);
        stpf = stp + r * (sty - stp);
    } else {
        stpf = stp > stx ? stpmax : stpmin;
    }
    brackt = brackt || case1 || case2;
    if (case1) {                                                  // the new step is the other end
        sty = stp; fy = fp; dy = dp;
    } else {
        if (case2) { sty = stx; fy = fx; dy = dx; }               // the old best becomes the other end
        stx = stp; fx = fp; dx = dp;
    }
    stp = stpf;
}

// One More-Thuente step for one row (MoreThuente.step): phi(stp) = f, phi'(stp) = g. Returns
// whether the step is accepted; otherwise the row's next trial step is left in stp.
template <typename F>
__device__ bool mt_step(F f, F g, F gtol, F xtol, F& stp, F stpmax, F& width, F& width1,
                        F& stx, F& sty, F& stmin, F& stmax, F finit, F& fx, F& fy, F ginit, F gtest,
                        F& gx, F& gy, bool& brackt, bool& stage1) {
    const F ftest = finit + stp * gtest;
    stage1 = stage1 && !(f <= ftest && g >= F(0));
    const bool done = (brackt && (stp <= stmin || stp >= stmax))
                      || (brackt && stmax - stmin <= xtol * stmax)
                      || (stp == stpmax && f <= ftest && g <= gtest)
                      || (stp == F(0) && (f > ftest || g >= gtest))
                      || (f <= ftest && mt_abs(g) <= gtol * -ginit);
    if (done) return true;
    // stage 1, lower value but no sufficient decrease: step on psi(t) = phi(t) - phi(0) - ftol t phi'(0)
    const bool modified = stage1 && f <= fx && f > ftest;
    const F shift = modified ? gtest : F(0);
    F fxm = fx - stx * shift, gxm = gx - shift, fym = fy - sty * shift, gym = gy - shift;
    F step = stp;
    mt_dcstep(stx, fxm, gxm, sty, fym, gym, step, f - stp * shift, g - shift, brackt, stmin, stmax);
    fx = fxm + stx * shift; gx = gxm + shift;
    fy = fym + sty * shift; gy = gym + shift;
    // bisect when the bracket does not shrink fast enough
    if (brackt && mt_abs(sty - stx) >= F(0.66) * width1) step = stx + F(0.5) * (sty - stx);
    if (brackt) {
        width1 = width;
        width = mt_abs(sty - stx);
        stmin = mt_min(stx, sty);
        stmax = mt_max(stx, sty);
    } else {
        stmin = step + F(MT_XTRAPL) * (step - stx);
        stmax = step + F(MT_XTRAPU) * (step - stx);
    }
    step = mt_min(mt_max(step, F(0)), stpmax);
    if (brackt && (step <= stmin || step >= stmax || stmax - stmin <= xtol * stmax)) step = stx;
    stp = step;
    return false;
}
"""

# One element per searching row r; the state arrays are indexed by the row.
IN_PARAMS = "I r, T f, T g, float64 gtol, float64 xtol, raw T stpmax, raw T finit, raw T ginit, raw T gtest"
OUT_PARAMS = ("raw T stp, raw T width, raw T width1, raw T stx, raw T sty, raw T stmin, raw T stmax, "
              "raw T fx, raw T fy, raw T gx, raw T gy, raw bool brackt, raw bool stage1, bool done")
OPERATION = ("done = mt_step<T>(f, g, T(gtol), T(xtol), stp[r], stpmax[r], width[r], width1[r], "
             "stx[r], sty[r], stmin[r], stmax[r], finit[r], fx[r], fy[r], ginit[r], gtest[r], gx[r], gy[r], "
             "brackt[r], stage1[r]);")
OPTIONS = ("--fmad=false",)
KERNELS = {"more_thuente_step": (IN_PARAMS, OUT_PARAMS, OPERATION)}

def step_kernel():
    return backend.elementwise_kernel("more_thuente_step", *KERNELS["more_thuente_step"], PREAMBLE, OPTIONS)


def fused_step(search, f, g, rows):
    """``search.step(f, g, rows)`` in one kernel launch (CuPy arrays, one float dtype throughout)."""
    import cupy
    if rows.dtype.kind not in "iu":
        raise TypeError(f"rows must be an index array, got dtype {rows.dtype}")
    done = cupy.empty(rows.shape, dtype=bool)
    step_kernel()(rows, f, g, search.gtol, search.xtol, search.stpmax, search.finit, search.ginit, search.gtest,
                  search.stp, search.width, search.width1, search.stx, search.sty, search.stmin, search.stmax,
                  search.fx, search.fy, search.gx, search.gy, search.brackt, search.stage1, done)
    return done
