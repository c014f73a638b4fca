"""The Moré–Thuente line search (MINPACK-2 ``dcsrch``/``dcstep``), vectorised over many problems.

L-BFGS-B (and so scipy's reference attack) searches along its direction for a step that meets
the strong Wolfe conditions

    φ(t) ≤ φ(0) + ftol·t·φ'(0)      and      |φ'(t)| ≤ gtol·|φ'(0)|,

(Moré & Thuente 1994, ACM TOMS 20(3)). Here φ_n(t) = f_n(x_n + t·d_n), one search per row,
each row its own step, bracket and stage; the arithmetic is MINPACK-2's, so a row takes the
steps the Fortran would take. ``MoreThuente(φ(0), φ'(0), first step, longest step)`` starts the
searches; ``step`` takes φ(t), φ'(t) at the current steps and either accepts them (done) or
proposes the next ones.
"""
import numpy

from .. import backend

XTRAPL, XTRAPU = 1.1, 4.0


class MoreThuente:
    """Line-search state of n rows (all arrays (n,)), as L-BFGS-B calls it: stpmin = 0."""

    STPMIN = 0                                                                               # for every row
    STEPS = ("stp", "stpmax", "width", "width1", "stx", "sty", "stmin", "stmax")             # in stp's dtype
    VALUES = ("finit", "fx", "fy")                                                           # in φ's
    SLOPES = ("ginit", "gtest", "gx", "gy")                                                  # in φ′'s
    FLAGS = ("brackt", "stage1")
    FIELDS = STEPS + VALUES + SLOPES + FLAGS

    def __init__(self, f0, g0, stp, stpmax, ftol=1e-3, gtol=0.9, xtol=0.1):
        xp = backend.get_array_module(f0)
        self.ftol, self.gtol, self.xtol = float(ftol), float(gtol), float(xtol)   # Python floats: weak in NumPy's promotion
        for names, dtype in ((self.STEPS, stp.dtype), (self.VALUES, f0.dtype), (self.SLOPES, g0.dtype),
                             (self.FLAGS, bool)):
            for name in names:
                setattr(self, name, xp.zeros(f0.shape, dtype=dtype))
        self.start(xp.arange(f0.shape[0]), f0, g0, stp, stpmax)

    def start(self, rows, f0, g0, stp, stpmax):
        """(Re)start the searches of ``rows`` (index array) from φ(0) = f0, φ'(0) = g0, first step
        stp, longest step stpmax (arrays over those rows)."""
        self.stp[rows], self.stpmax[rows] = stp, stpmax
        self.finit[rows], self.ginit[rows], self.gtest[rows] = f0, g0, self.ftol * g0
        self.width[rows] = stpmax - self.STPMIN
        self.width1[rows] = self.width[rows] / 0.5
        self.brackt[rows], self.stage1[rows] = False, True
        self.stx[rows], self.fx[rows], self.gx[rows] = 0, f0, g0
        self.sty[rows], self.fy[rows], self.gy[rows] = 0, f0, g0
        self.stmin[rows], self.stmax[rows] = 0, stp + XTRAPU * stp

    def __getitem__(self, rows):
        """The searches of ``rows`` (a mask or index array) alone, as a new state."""
        part = object.__new__(MoreThuente)
        part.ftol, part.gtol, part.xtol = self.ftol, self.gtol, self.xtol
        for name in self.FIELDS:
            setattr(part, name, getattr(self, name)[rows])
        return part

    def step(self, f, g, rows):
        """φ(stp), φ'(stp) of ``rows`` (index array); returns the mask (over ``rows``) of accepted steps.

        Rows not accepted get their next trial step in ``self.stp``.
        """
        xp = backend.get_array_module(f)
        if backend.fused_kernels(xp) and self._one_float_dtype(f, g):      # one CUDA kernel (linesearch_kernel.py)
            from .linesearch_kernel import fused_step
            return fused_step(self, f, g, rows)
        s = {k: getattr(self, k)[rows] for k in self.FIELDS}
        stp, brackt = s["stp"], s["brackt"]
        ftest = s["finit"] + stp * s["gtest"]
        s["stage1"] = s["stage1"] & ~((f <= ftest) & (g >= 0))
        # warnings and convergence: the current step is accepted in every case
        done = ((brackt & ((stp <= s["stmin"]) | (stp >= s["stmax"])))                    # rounding errors
                | (brackt & (s["stmax"] - s["stmin"] <= self.xtol * s["stmax"]))            # xtol test
                | ((stp == s["stpmax"]) & (f <= ftest) & (g <= s["gtest"]))                 # stp = stpmax
                | ((stp == self.STPMIN) & ((f > ftest) | (g >= s["gtest"])))                # stp = stpmin
                | ((f <= ftest) & (abs(g) <= self.gtol * -s["ginit"])))                     # strong Wolfe
        # stage 1 with a lower function value but no sufficient decrease: step on the modified
        # function ψ(t) = φ(t) − φ(0) − ftol·t·φ'(0)
        modified = s["stage1"] & (f <= s["fx"]) & (f > ftest)
        shift = xp.where(modified, s["gtest"], 0)
        fm, gm = f - stp * shift, g - shift
        fxm, gxm = s["fx"] - s["stx"] * shift, s["gx"] - shift
        fym, gym = s["fy"] - s["sty"] * shift, s["gy"] - shift
        stx, fxm, gxm, sty, fym, gym, stp, brackt = dcstep(s["stx"], fxm, gxm, s["sty"], fym, gym, stp, fm, gm,
                                                          brackt, s["stmin"], s["stmax"])
        fx, gx = fxm + stx * shift, gxm + shift
        fy, gy = fym + sty * shift, gym + shift
        # bisect when the bracket does not shrink fast enough
        width, width1 = s["width"], s["width1"]
        bisect = brackt & (abs(sty - stx) >= 0.66 * width1)
        stp = xp.where(bisect, stx + 0.5 * (sty - stx), stp)
        width1 = xp.where(brackt, width, width1)
        width = xp.where(brackt, abs(sty - stx), width)
        stmin = xp.where(brackt, xp.minimum(stx, sty), stp + XTRAPL * (stp - stx))
        stmax = xp.where(brackt, xp.maximum(stx, sty), stp + XTRAPU * (stp - stx))
        stp = xp.minimum(xp.maximum(stp, self.STPMIN), s["stpmax"])
        stuck = brackt & ((stp <= stmin) | (stp >= stmax) | (stmax - stmin <= self.xtol * stmax))
        stp = xp.where(stuck, stx, stp)
        new = {"stx": stx, "fx": fx, "gx": gx, "sty": sty, "fy": fy, "gy": gy, "stp": stp, "brackt": brackt,
               "width": width, "width1": width1, "stmin": stmin, "stmax": stmax, "stage1": s["stage1"]}
        keep = ~done
        for k, v in new.items():
            full = getattr(self, k)
            full[rows] = xp.where(keep, v, s[k])
        return done

    def _one_float_dtype(self, f, g):
        """Whether steps, values and slopes (state and arguments) share one dtype, float32 or float64:
        the fused kernel's case (mixed dtypes would need NumPy's promotions)."""
        dtypes = {self.stp.dtype, self.finit.dtype, self.ginit.dtype, f.dtype, g.dtype}
        return len(dtypes) == 1 and dtypes.pop() in (numpy.float32, numpy.float64)


def dcstep(stx, fx, dx, sty, fy, dy, stp, fp, dp, brackt, stpmin, stpmax):
    """One safeguarded step of MINPACK-2's dcstep for every row (cubic/quadratic interpolation).

    (stx, fx, dx): best step so far, its value and derivative; (sty, fy, dy): the other end of
    the interval; (stp, fp, dp): the current step. Returns the updated interval, the new step
    and whether a minimiser is bracketed.
    """
    xp = backend.get_array_module(stp)
    with numpy.errstate(all="ignore"):
        sgnd = dp * (dx / abs(dx))
        theta = 3 * (fx - fp) / (stp - stx) + dx + dp
        s = xp.maximum(xp.maximum(abs(theta), abs(dx)), abs(dp))
        disc = (theta / s) ** 2 - (dx / s) * (dp / s)

        # case 1: higher function value, the minimum is bracketed
        gamma = s * xp.sqrt(disc)
        gamma1 = xp.where(stp < stx, -gamma, gamma)
        r = ((gamma1 - dx) + theta) / (((gamma1 - dx) + gamma1) + dp)
        stpc = stx + r * (stp - stx)
        stpq = stx + ((dx / ((fx - fp) / (stp - stx) + dx)) / 2) * (stp - stx)
        step1 = xp.where(abs(stpc - stx) < abs(stpq - stx), stpc, stpc + (stpq - stpc) / 2)

        # case 2: lower value, derivatives of opposite sign: bracketed
        gamma2 = xp.where(stp > stx, -gamma, gamma)
        r = ((gamma2 - dp) + theta) / (((gamma2 - dp) + gamma2) + dx)
        stpc = stp + r * (stx - stp)
        stpq = stp + (dp / (dp - dx)) * (stx - stp)
        step2 = xp.where(abs(stpc - stp) > abs(stpq - stp), stpc, stpq)

        # case 3: lower value, same sign, the derivative decreases in magnitude
        gamma3 = s * xp.sqrt(xp.maximum(0, disc))
        gamma3 = xp.where(stp > stx, -gamma3, gamma3)
        r = ((gamma3 - dp) + theta) / ((gamma3 + (dx - dp)) + gamma3)
        stpc = xp.where((r < 0) & (gamma3 != 0), stp + r * (stx - stp), xp.where(stp > stx, stpmax, stpmin))
        stpq = stp + (dp / (dp - dx)) * (stx - stp)
        near = xp.where(abs(stpc - stp) < abs(stpq - stp), stpc, stpq)
        cap = stp + 0.66 * (sty - stp)
        near = xp.where(stp > stx, xp.minimum(cap, near), xp.maximum(cap, near))
        far = xp.where(abs(stpc - stp) > abs(stpq - stp), stpc, stpq)
        far = xp.maximum(stpmin, xp.minimum(stpmax, far))
        step3 = xp.where(brackt, near, far)

        # case 4: lower value, same sign, the derivative does not decrease
        theta4 = 3 * (fp - fy) / (sty - stp) + dy + dp
        s4 = xp.maximum(xp.maximum(abs(theta4), abs(dy)), abs(dp))
        gamma4 = s4 * xp.sqrt((theta4 / s4) ** 2 - (dy / s4) * (dp / s4))
        gamma4 = xp.where(stp > sty, -gamma4, gamma4)
        r = ((gamma4 - dp) + theta4) / (((gamma4 - dp) + gamma4) + dy)
        step4 = xp.where(brackt, stp + r * (sty - stp), xp.where(stp > stx, stpmax, stpmin))

    case1 = fp > fx
    case2 = ~case1 & (sgnd < 0)
    case3 = ~case1 & ~case2 & (abs(dp) < abs(dx))
    stpf = xp.where(case1, step1, xp.where(case2, step2, xp.where(case3, step3, step4)))
    brackt = brackt | case1 | case2

    # update the interval that contains a minimiser
    to_y = case1
    swap = ~case1 & (sgnd < 0)                         # the old best becomes the other end
    sty_new = xp.where(to_y, stp, xp.where(swap, stx, sty))
    fy_new = xp.where(to_y, fp, xp.where(swap, fx, fy))
    dy_new = xp.where(to_y, dp, xp.where(swap, dx, dy))
    stx_new = xp.where(to_y, stx, stp)
    fx_new = xp.where(to_y, fx, fp)
    dx_new = xp.where(to_y, dx, dp)
    return stx_new, fx_new, dx_new, sty_new, fy_new, dy_new, stpf, brackt
