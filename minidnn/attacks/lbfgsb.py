"""Batched L-BFGS-B on the box [0, 1]^D: scipy's algorithm, one iteration for many problems at once.

Row n of x is its own problem, min f_n(x_n) subject to 0 ≤ x_n ≤ 1, with its own memory of
m pairs (s_i, y_i), its own θ and its own line search. Each iteration is L-BFGS-B 3.0's
(Byrd, Lu, Nocedal & Zhu 1995, SIAM J. Sci. Comput. 16(5); Morales & Nocedal 2011), the
code behind ``scipy.optimize.minimize(method="L-BFGS-B")``, written with array operations
across the rows:

1. ``cauchy_point``: the generalized Cauchy point x^c, the first local minimiser of the
   quadratic model  m(x) = gᵀ(x − x_k) + ½(x − x_k)ᵀB(x − x_k)  along the projected
   steepest-descent path P(x_k − t·g), with the compact form (BLNZ eqs. 3.2–3.4)
       B = θI − W M Wᵀ,   W = [Y  θS],   M = [[−D, Lᵀ], [L, θSᵀS]]⁻¹.
2. ``subspace_minimum``: the model's minimiser over the variables still free at x^c (direct
   primal method, Sherman–Morrison–Woodbury), projected into the box, or cut back to it when
   the projection is not a descent direction (3.0's change).
3. ``_search``: Moré–Thuente along d = x̄ − x_k (strong Wolfe, ftol 1e-3, gtol 0.9),
   first step 1, longest step to the box's edge (``linesearch.py``). A row whose search needs
   more than ``search_rounds`` evaluations goes on with it in the next iteration, beside the
   other rows' new searches, so that one slow search does not hold up the batch.
4. ``update_memory``: the pair s = x_{k+1} − x_k, y = g_{k+1} − g_k, skipped when
   sᵀy ≤ ε·(−g_kᵀs); θ = yᵀy / sᵀy. A failed line search drops the memory and retries;
   with no memory to drop the row stops (scipy's ABNORMAL_TERMINATION_IN_LNSRCH).

Stopping rules are scipy's: ‖P(x − g) − x‖_∞ ≤ pgtol, (f_k − f_{k+1}) ≤ ftol·max(|f_k|, |f_{k+1}|, 1),
or maxiter iterations. Memory slots are per row: a new pair takes an empty slot or the
oldest one; ``age`` orders them (−1: empty, and an empty slot's vectors are zero).
The subspace step needs WᵀZZᵀW over the free variables Z; it is kept up to date as Z and
the memory change (a few variables enter or leave Z per iteration) instead of being
formed from scratch, which would cost 4m²·D per row and iteration.
"""
import numpy

from .. import backend
from .linesearch import MoreThuente

EPS = numpy.finfo(numpy.float64).eps
PGTOL, FTOL, MAX_LINESEARCH = 1e-5, 1e7 * EPS, 20   # scipy's defaults (pgtol, factr·ε, maxls), every minimiser's
BIG = 1e10                                  # L-BFGS-B's cap on the line search's longest step
CONVERGED, MAXITER, ABNORMAL = 0, 1, 2
GPU_SEARCH_ROUNDS = 3                       # search_rounds' default on CuPy (minimize_box)


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, numpy.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def default_search_rounds(xp, max_linesearch=MAX_LINESEARCH):
    """search_rounds when none is given: GPU_SEARCH_ROUNDS on CuPy, max_linesearch (no waiting) elsewhere."""
    return min(GPU_SEARCH_ROUNDS, max_linesearch) if xp.__name__ == "cupy" else max_linesearch


def minimize_box(fun, x0, maxiter=200, memory=10, pgtol=PGTOL, ftol=FTOL, max_linesearch=MAX_LINESEARCH,
                 search_rounds=None):
    """Minimise every row of x0 (n, D) in [0,1]^D; fun(x (k, D), rows (k,)) -> (f (k,), g (k, D)), finite.

    ``rows`` index the problems (rows of x0) being evaluated. Returns (x (n, D) on the backend,
    clipped to the box as scipy's callers do; host arrays iterations (n,) and status (n,):
    CONVERGED, MAXITER or ABNORMAL).

    ``search_rounds``: evaluations per iteration after which a row still in its line search
    waits for the next iteration, where its search goes on in the same calls of ``fun`` as the
    other rows' first trials, instead of the whole batch waiting for it (a few rows need up to
    ``max_linesearch``). It changes how the rows are scheduled, not what any row computes (only
    BLAS's rounding of a product over other sets of rows). None: ``GPU_SEARCH_ROUNDS`` on CuPy,
    ``max_linesearch`` (no waiting) elsewhere. On a 2-core CPU waiting does not pay (the waiting
    rows' Cauchy and subspace steps are computed and discarded: 5–9% slower); on an H100 it made
    10,000 attacks 1.09–1.15× faster in float64 and 1.68× in float32 (one run each;
    bench/RESULTS.md).
    """
    xp = backend.get_array_module(x0)
    n, dim = x0.shape
    _check_positive_int("max_linesearch", max_linesearch)
    search_rounds = default_search_rounds(xp, max_linesearch) if search_rounds is None else search_rounds
    _check_positive_int("search_rounds", search_rounds)
    x_out = x0.copy()
    its_out = numpy.zeros(n, dtype=numpy.int64)
    status_out = numpy.full(n, MAXITER, dtype=numpy.int8)

    idx = xp.arange(n)
    x = x0.copy()
    f, g = fun(x, idx)
    state = {"idx": idx, "x": x, "f": f, "g": g,
             "W": xp.zeros((n, dim, 2 * memory), dtype=x.dtype),   # columns [Y  S]: y_j = W[:, :, j], s_j = W[:, :, m + j]
             "G": xp.zeros((n, 2 * memory, 2 * memory), dtype=x.dtype),  # [Y S]ᵀ Z [Y S] for the free mask Z below
             "Z": xp.zeros((n, dim), dtype=bool),
             "SS": xp.zeros((n, memory, memory), dtype=x.dtype),   # SᵀS
             "SY": xp.zeros((n, memory, memory), dtype=x.dtype),   # SY[i, j] = s_iᵀy_j (i newer than j used)
             "age": xp.full((n, memory), -1, dtype=xp.int64),
             "updates": xp.zeros(n, dtype=xp.int64),
             "theta": xp.ones(n, dtype=x.dtype),
             "its": xp.zeros(n, dtype=xp.int64),
             "status": xp.full(n, -1, dtype=xp.int8),             # −1: still running
             # the line search in progress: direction d, subspace point z, last trial (x, f, g, gᵀd)
             "searching": xp.zeros(n, dtype=bool),
             "search": MoreThuente(xp.zeros_like(f), xp.zeros(n, dtype=numpy.result_type(g.dtype, x.dtype)),
                                   xp.ones(n, dtype=x.dtype), xp.ones(n, dtype=x.dtype)),
             "d": xp.zeros_like(x), "z": xp.zeros_like(x), "gd0": xp.zeros_like(f), "dtd": xp.zeros_like(f),
             "evaluations": xp.zeros(n, dtype=xp.int64),
             "x_try": xp.zeros_like(x), "f_try": xp.zeros_like(f), "g_try": xp.zeros_like(x),
             "gd_try": xp.zeros_like(f)}
    state["status"][projected_gradient_norm(x, g) <= pgtol] = CONVERGED
    alive = xp.ones(n, dtype=bool)                                 # not yet written out

    while True:
        finished = alive & (state["status"] >= 0)
        if bool(finished.any()):
            rows = state["idx"][finished]
            x_out[rows] = xp.clip(state["x"][finished], 0, 1)   # a step to the box's edge can overshoot by rounding
            host_rows = backend.to_numpy(rows)
            its_out[host_rows] = backend.to_numpy(state["its"][finished])
            status_out[host_rows] = backend.to_numpy(state["status"][finished])
            alive &= ~finished
            left = int(alive.sum())
            if left == 0:
                break
            if alive.shape[0] - left >= max(1, alive.shape[0] // 10):   # compacting copies: not too often
                state = {k: v[alive] for k, v in state.items()}
                alive = alive[alive]
        _iterate(fun, state, alive, memory, maxiter, pgtol, ftol, max_linesearch, search_rounds)
    return x_out, its_out, status_out


def _iterate(fun, st, alive, m, maxiter, pgtol, ftol, max_linesearch, search_rounds):
    """One L-BFGS-B iteration for the running rows of ``st`` (updated in place).

    Rows still in a line search begun in an earlier iteration take no new direction: they go on
    with it (``search_rounds``). The others compute the Cauchy point and the subspace step and
    start theirs."""
    xp = backend.get_array_module(st["x"])
    running = alive & (st["status"] < 0)
    ready = running & ~st["searching"]
    uphill = xp.zeros_like(ready)
    if bool(ready.any()):
        uphill = _new_direction(st, ready)
    accepted, exhausted = _search(fun, st, max_linesearch, search_rounds)
    # a failed line search: stay, drop the memory and retry, or stop when there was none
    failed = uphill | exhausted
    if bool(failed.any()):
        has_memory = (st["age"] >= 0).any(axis=1)        # unchanged since the search began
        st["status"][failed & ~has_memory] = ABNORMAL
        _drop_memory(st, failed & has_memory)
    moved = accepted
    x, f, g = st["x"], st["f"], st["g"]
    st["x"] = xp.where(moved[:, None], st["x_try"], x)
    st["f"] = xp.where(moved, st["f_try"], f)
    st["g"] = xp.where(moved[:, None], st["g_try"], g)
    st["its"] += moved
    # scipy's order: the iteration limit first, then the convergence tests, then the memory update
    at_limit = moved & (st["its"] >= maxiter)
    st["status"][at_limit] = MAXITER
    tests = moved & ~at_limit
    small_pg = projected_gradient_norm(st["x"], st["g"]) <= pgtol
    small_decrease = (f - st["f"]) <= ftol * xp.maximum(xp.maximum(abs(f), abs(st["f"])), 1)
    st["status"][tests & (small_pg | small_decrease)] = CONVERGED
    update = tests & ~small_pg & ~small_decrease
    if bool(update.any()):
        update_memory(st, update, st["search"].stp, st["d"], st["g_try"] - g, st["gd_try"], st["gd0"], st["dtd"], m)


def _new_direction(st, ready):
    """Steps 1 and 2 for the rows ``ready`` (mask), and the start of their line searches (``lnsrlb``):
    d = x̄ − x, first step 1 (at most the longest step; exactly 1 on the first iteration, where the
    longest step is 1). Returns the mask of rows whose d is not a descent direction (their search
    fails at once); rows whose subspace system is singular drop their memory and wait."""
    xp = backend.get_array_module(st["x"])
    x, f, g, theta, W = st["x"], st["f"], st["g"], st["theta"], st["W"]
    others = bool(st["searching"].any())                  # rows in a search keep their state untouched
    M_inv, M, bad = middle_matrix(st["SS"], st["SY"], st["age"], theta)
    bad &= ready
    if bool(bad.any()):                       # the memory is numerically singular: drop it (as formt's info ≠ 0)
        _drop_memory(st, bad)
        M_inv, M, _ = middle_matrix(st["SS"], st["SY"], st["age"], theta)

    x_cauchy, c, t_cauchy, p_cauchy, free = cauchy_point(x, g, theta, W, M)
    if others:
        free = xp.where(ready[:, None], free, st["Z"])    # their free set, and so WᵀZZᵀW, stays as it is
    z, singular = subspace_minimum(st, x_cauchy, c, t_cauchy, p_cauchy, free, M, M_inv)
    restart = ready & singular                # the reduced system is singular: drop the memory, retry (subsm's info ≠ 0)
    if bool(restart.any()):
        _drop_memory(st, restart)
        ready = ready & ~restart

    d = z - x
    gd0, dtd = rowdot(g, d), rowdot(d, d)
    stpmax = xp.where(st["its"] == 0, 1.0, xp.minimum(BIG, steps_to_box(x, d).min(axis=1))).astype(x.dtype)
    stp = xp.minimum(1.0, stpmax).astype(x.dtype)
    if others:
        st["d"], st["z"] = xp.where(ready[:, None], d, st["d"]), xp.where(ready[:, None], z, st["z"])
        st["gd0"], st["dtd"] = xp.where(ready, gd0, st["gd0"]), xp.where(ready, dtd, st["dtd"])
    else:
        st["d"], st["z"], st["gd0"], st["dtd"] = d, z, gd0, dtd
    rows = xp.nonzero(ready)[0]
    st["search"].start(rows, f[rows], gd0[rows], stp[rows], stpmax[rows])
    st["evaluations"][rows] = 0
    descent = ready & (gd0 < 0)
    st["searching"] |= descent
    return ready & ~descent


def projected_gradient_norm(x, g):
    """‖P_[0,1](x − g) − x‖_∞ per row (zero exactly at a KKT point)."""
    xp = backend.get_array_module(x)
    return abs(xp.clip(x - g, 0, 1) - x).max(axis=1)


def steps_to_box(x, d):
    """Per variable, the step t ≥ 0 at which x + t·d reaches the edge of [0, 1]: (1 − x)/d going up,
    x/(−d) going down, ∞ where d = 0, and 0 for a variable already at (or by rounding past) its bound.

    Element-wise arithmetic only: NumPy's ``where`` branches on every element, and on a mask
    as irregular as a gradient's signs it costs as much as 12–23 additions
    (bench/numpy_primitives.py).
    """
    xp = backend.get_array_module(x)
    room = ((d > 0) - x) * xp.sign(d)                          # 1 − x going up, x going down, 0 for d = 0
    with numpy.errstate(divide="ignore"):
        return xp.maximum((room + (d == 0)) / abs(d), 0)       # (1 + 0)/0 = ∞ where d = 0


def rowdot(a, b):
    """Row-wise ⟨a_n, b_n⟩ of two (n, D) arrays, without a temporary."""
    xp = backend.get_array_module(a)
    return xp.einsum("nd,nd->n", a, b)


# ---- the compact representation ---------------------------------------------------------------
def middle_matrix(SS, SY, age, theta):
    """M⁻¹ = [[−D, Lᵀ], [L, θSᵀS]] and M per row (n, 2m, 2m); rows whose T = θSᵀS + L D⁻¹ Lᵀ is not
    positive definite are flagged (L-BFGS-B drops their memory).

    D = diag(s_iᵀy_i), L_ij = s_iᵀy_j for pair i newer than pair j. Empty slots get −1 and 1
    on the diagonal, which decouples them (their W columns are zero).
    """
    xp = backend.get_array_module(SS)
    n, m, _ = SS.shape
    filled = age >= 0
    eye = xp.eye(m, dtype=bool)
    diag_sy = xp.where(filled, xp.diagonal(SY, axis1=1, axis2=2), 1)
    L = xp.where((age[:, :, None] > age[:, None, :]) & filled[:, None, :], SY, 0)
    theta_ss = xp.where(eye, xp.where(filled, theta[:, None] * xp.diagonal(SS, axis1=1, axis2=2), 1)[:, :, None],
                        theta[:, None, None] * SS)
    M_inv = xp.empty((n, 2 * m, 2 * m), dtype=SS.dtype)
    M_inv[:, :m, :m] = xp.where(eye, -diag_sy[:, :, None], 0)
    M_inv[:, :m, m:] = L.transpose(0, 2, 1)
    M_inv[:, m:, :m] = L
    M_inv[:, m:, m:] = theta_ss
    LD = L / diag_sy[:, None, :]                                # L D⁻¹
    with numpy.errstate(all="ignore"):
        T = theta_ss + xp.matmul(LD, L.transpose(0, 2, 1))
        ok = xp.isfinite(T).all(axis=(1, 2))
        T = xp.where(ok[:, None, None], T, xp.eye(m, dtype=T.dtype))
        ok &= cholesky_succeeds(T)                              # formt's dpofa
    # the block inverse through T, the Schur complement of −D (T⁻¹ only: m×m instead of 2m×2m):
    #   M = [[−D⁻¹ + (LD⁻¹)ᵀ T⁻¹ L D⁻¹,  (T⁻¹ L D⁻¹)ᵀ],  [T⁻¹ L D⁻¹,  T⁻¹]]
    T_inv = xp.linalg.inv(xp.where(ok[:, None, None], T, xp.eye(m, dtype=T.dtype)))
    lower = xp.matmul(T_inv, LD)
    M = xp.empty_like(M_inv)
    M[:, :m, :m] = xp.matmul(LD.transpose(0, 2, 1), lower) - xp.where(eye, 1 / diag_sy[:, :, None], 0)
    M[:, :m, m:] = lower.transpose(0, 2, 1)
    M[:, m:, :m] = lower
    M[:, m:, m:] = T_inv
    return M_inv, M, ~ok


def cholesky_succeeds(T):
    """Per row, whether the Cholesky factorisation of the symmetric T (n, m, m) finds every pivot > 0
    (T positive definite, as LINPACK's dpofa decides it); m column steps across all rows at once."""
    xp = backend.get_array_module(T)
    A = T.copy()
    ok = xp.ones(T.shape[0], dtype=bool)
    with numpy.errstate(all="ignore"):
        for j in range(T.shape[1]):
            pivot = A[:, j, j]
            ok &= pivot > 0
            column = A[:, j + 1:, j] / xp.sqrt(xp.where(ok, pivot, 1))[:, None]
            A[:, j + 1:, j + 1:] -= column[:, :, None] * column[:, None, :]
    return ok


def _drop_memory(st, rows):
    """Forget the memory of ``rows`` (mask): col = 0, θ = 1, as L-BFGS-B's refresh."""
    for key in ("W", "G", "SS", "SY"):
        st[key][rows] = 0
    st["age"][rows] = -1
    st["theta"][rows] = 1


def _theta_scale(theta, m2):
    """(n, 2m): 1 on the Y columns, θ on the S columns (W = [Y  θS] = [Y  S]·diag(scale))."""
    xp = backend.get_array_module(theta)
    scale = xp.ones((theta.shape[0], m2), dtype=theta.dtype)
    scale[:, m2 // 2:] = theta[:, None]
    return scale


def _wt(W, v):
    """[Y S]ᵀv per row: (n, D, 2m), (n, D) -> (n, 2m) (batched matrix-vector products)."""
    xp = backend.get_array_module(W)
    return xp.matmul(v[:, None, :], W)[:, 0]


def _w(W, u):
    """[Y S] u per row: (n, D, 2m), (n, 2m) -> (n, D)."""
    xp = backend.get_array_module(W)
    return xp.matmul(W, u[:, :, None])[:, :, 0]


# ---- step 1: the generalized Cauchy point -------------------------------------------------------
def cauchy_point(x, g, theta, W, M, chunk=32):
    """x^c, c = Wᵀ(x^c − x), t^c, p^c = Wᵀd^c and the mask of variables free at x^c (``cauchy``).

    Along the path x(t) = P(x − t·g) variable i stops at its breakpoint t_i (x_i/g_i going
    down, (x_i − 1)/g_i going up). Between breakpoints the model is a quadratic in t with
        f'(t)  = −Δ_j + θ t Δ_j − p_jᵀM(C_j + t p_j),      f''  = θ Δ_j − p_jᵀ M p_j,
    Δ_j = ‖d_j‖², p_j = Wᵀd_j, C_j = Σ_{i≤j} (bound_i − x_i) w_i, d_j = −g on the variables not
    yet stopped: cumulative sums over the sorted breakpoints, so a chunk of breakpoints is
    one array operation. x^c is the first minimiser inside its segment.
    """
    xp = backend.get_array_module(x)
    n, dim = x.shape
    at_lower, at_upper = x <= 0, x >= 1
    fixed = (at_lower & (g >= 0)) | (~at_lower & at_upper & (g <= 0))
    moving = ~fixed & (at_lower | at_upper | (g != 0))
    d = -g * moving                                            # −g on the moving variables, 0 elsewhere
    bound = (g <= 0).astype(x.dtype)                           # the bound each variable heads for along −g
    to_bound = bound - x                                       # z_i = bound − x_i for a stopped variable
    with numpy.errstate(all="ignore"):
        # t_i = |z_i| / |g_i| (= x_i/g_i going down, (x_i − 1)/g_i going up); ∞ for the others
        t_break = (abs(to_bound) + ~moving) / (abs(g) * moving)
    n_break = moving.sum(axis=1)
    delta0 = rowdot(d, d)
    m2 = W.shape[2]
    p0 = _wt(W, d) * _theta_scale(theta, m2)
    f2_org = theta * delta0 - xp.einsum("nk,nkl,nl->n", p0, M, p0)

    k = min(chunk, dim)
    first = xp.argpartition(t_break, k - 1, axis=1)[:, :k] if k < dim else xp.argsort(t_break, axis=1)
    first = xp.take_along_axis(first, xp.argsort(xp.take_along_axis(t_break, first, axis=1), axis=1), axis=1)

    rows = xp.arange(n)
    carry = {"t": xp.zeros(n, dtype=x.dtype), "delta": delta0, "p": p0, "C": xp.zeros_like(p0),
             "done": xp.zeros(n, dtype=xp.int64)}
    t_sum = xp.zeros(n, dtype=x.dtype)
    c = xp.zeros_like(p0)
    p_stop = xp.zeros_like(p0)
    n_hit = xp.zeros(n, dtype=xp.int64)
    resolved = _cauchy_chunk(rows, first, carry, t_break, d, to_bound, W, theta, M, n_break, f2_org,
                             t_sum, c, p_stop, n_hit)
    # variables passed on the way stop at their bounds; the others move t_sum along d
    hit = xp.zeros((n, dim), dtype=bool)
    hit[rows[:, None], first] = xp.arange(first.shape[1])[None, :] < n_hit[:, None]
    pending = rows[~resolved]
    if pending.size:                                           # rare: more than ``chunk`` breakpoints passed
        # the remaining breakpoints in order; the first chunk's are put in front (ties at its edge
        # could otherwise be ordered differently by the partial and the full sort)
        masked = t_break[pending]
        masked[xp.arange(pending.size)[:, None], first[pending]] = -xp.inf
        order_full = xp.argsort(masked, axis=1)
        sub = {key: val[pending] for key, val in carry.items()}
        start = k
        while pending.size:
            block = order_full[:, start:start + k]
            if block.shape[1] == 0:
                raise RuntimeError("Cauchy point search ran past the last breakpoint")
            done_here = _cauchy_chunk(pending, block, sub, t_break, d, to_bound, W, theta, M, n_break, f2_org,
                                      t_sum, c, p_stop, n_hit)
            if bool(done_here.any()):
                out, order_out = pending[done_here], order_full[done_here]
                hit[out[:, None], order_out] = xp.arange(dim)[None, :] < n_hit[out][:, None]
            keep = ~done_here
            pending, order_full = pending[keep], order_full[keep]
            sub = {key: val[keep] for key, val in sub.items()}
            start += k
    x_cauchy = xp.where(hit, bound, x + t_sum[:, None] * d)
    return x_cauchy, c, t_sum, p_stop, ~fixed & ~hit


def _cauchy_chunk(rows, order, carry, t_break, d, to_bound, W, theta, M, n_break, f2_org, t_sum, c, p_stop, n_hit):
    """Pass the breakpoints ``order`` (k, K) of ``rows`` in turn; write x^c's t, c, p and count for the
    rows whose minimiser falls before the chunk's end; update ``carry`` for the others.
    Returns the mask (k,) of rows resolved here."""
    xp = backend.get_array_module(d)
    k, K = order.shape
    m2 = W.shape[2]
    r = rows[:, None]
    t_j = t_break[r, order]
    d_j = d[r, order]
    z_j = to_bound[r, order]
    w = W[r, order] * _theta_scale(theta[rows], m2)[:, None, :]            # (k, K, 2m): rows of [Y θS]
    # states j = 0..K: before the chunk's first breakpoint, then after each (cumulative sums)
    delta = xp.empty((k, K + 1), dtype=d.dtype)
    delta[:, 0] = carry["delta"]
    delta[:, 1:] = -d_j * d_j
    _accumulate_states(delta)
    p = xp.empty((k, K + 1, m2), dtype=d.dtype)
    p[:, 0] = carry["p"]
    xp.multiply(-d_j[..., None], w, out=p[:, 1:])
    _accumulate_states(p)
    C = xp.empty((k, K + 1, m2), dtype=d.dtype)
    C[:, 0] = carry["C"]
    xp.multiply(z_j[..., None], w, out=C[:, 1:])
    _accumulate_states(C)
    t = xp.concatenate([carry["t"][:, None], t_j], axis=1)                 # (k, K+1): time of state j
    th = theta[rows][:, None]
    Mp = xp.matmul(p, M[rows])                                             # (M p_j)ᵀ = p_jᵀ M, M symmetric
    with numpy.errstate(all="ignore"):
        f2 = xp.maximum(EPS * f2_org[rows][:, None], th * delta - (p * Mp).sum(axis=2))
        f1 = -delta + th * t * delta - (Mp * (C + t[..., None] * p)).sum(axis=2)
        dtm = -f1 / f2
        count = carry["done"][:, None] + xp.arange(K + 1)[None, :]
        last = count >= n_break[rows][:, None]                             # every breakpoint passed
        dtm = xp.where(last, 0, dtm)
        gap = xp.concatenate([t_j, xp.full((k, 1), xp.inf, dtype=d.dtype)], axis=1) - t
        gap[:, K] = xp.where(last[:, K], xp.inf, -xp.inf)                  # the next breakpoint is in the next chunk
        stop = dtm < gap
    resolved = stop.any(axis=1)
    j = xp.argmax(stop, axis=1)
    take = lambda a: xp.take_along_axis(a, j[:, None], axis=1)[:, 0]
    step = xp.maximum(take(dtm), 0)
    p_j = xp.take_along_axis(p, j[:, None, None], axis=1)[:, 0]
    C_j = xp.take_along_axis(C, j[:, None, None], axis=1)[:, 0]
    t_at = take(t)
    out = rows[resolved]
    t_sum[out] = (t_at + step)[resolved]
    c[out] = (C_j + (t_at + step)[:, None] * p_j)[resolved]
    p_stop[out] = p_j[resolved]
    n_hit[out] = take(count)[resolved]
    carry.update(t=t[:, K], delta=delta[:, K], p=p[:, K], C=C[:, K], done=count[:, K])
    return resolved


STATE_FORMS = ("loop", "cumsum", "kernel")


def _accumulate_states(a, form=None):
    """The cumulative sum over axis 1 of a (k, K+1, 2m) or (k, K+1) array, in place, in NumPy's order.

    On NumPy along the last axis one cumsum; along a middle axis K slice additions
    a[:, j] += a[:, j − 1] (NumPy's cumsum there is 3–4× slower, same order). On CuPy one CUDA
    kernel adding down each column (``cauchy_kernels.py``: NumPy's bits, where CuPy's cumsum
    need not sum in that order), or with the kernels off one cumsum, not K launches. ``form``
    (one of STATE_FORMS) forces one (bench/attack_phases.py times them)."""
    xp = backend.get_array_module(a)
    if form is None:
        if xp is numpy:
            form = "loop" if a.ndim == 3 else "cumsum"
        else:
            fused = backend.fused_kernels(xp) and a.dtype.char in "fd" and a.flags.c_contiguous
            form = "kernel" if fused else "cumsum"
    if form not in STATE_FORMS:
        raise ValueError(f"form must be one of {STATE_FORMS}, got {form!r}")
    if form == "kernel":
        from . import cauchy_kernels
        return cauchy_kernels.accumulate(a)
    if form == "cumsum":
        a[...] = xp.cumsum(a, axis=1)
        return a
    for j in range(1, a.shape[1]):
        a[:, j] += a[:, j - 1]
    return a


# ---- step 2: subspace minimisation ----------------------------------------------------------
def subspace_minimum(st, x_cauchy, c, t_cauchy, p_cauchy, free, M, M_inv, rebuild_share=1 / 8):
    """x̄: the model's minimiser over the variables ``free`` at x^c, kept in the box (``subsm``).

    Reduced gradient r = −Zᵀ(g + θ(x^c − x) − W M c); Newton step on the free variables
        d = r/θ + W K⁻¹ Wᵀ r / θ²,   K = M⁻¹ − WᵀZZᵀW / θ       (Sherman–Morrison–Woodbury).
    Rows without free variables or without memory keep x^c. WᵀZZᵀW comes from ``st["G"]``,
    brought up to date here for ``free``, also in rows without memory (their W and G are zero):
    so a row's first pair does not find the free set changed from empty to nearly every
    variable, which would cost a rebuild. Returns (x̄, rows whose K is singular).
    """
    xp = backend.get_array_module(x_cauchy)
    x, g, theta, W = st["x"], st["g"], st["theta"], st["W"]
    n, dim, m2 = W.shape
    _track_free_set(st, free, rebuild_share)
    free = free & (st["age"] >= 0).any(axis=1)[:, None]                 # no memory: x̄ = x^c
    scale = _theta_scale(theta, m2)
    G = st["G"] * scale[:, :, None] * scale[:, None, :]                 # WᵀZZᵀW with W = [Y θS]
    Mc = xp.einsum("nkl,nl->nk", M, c)
    base = (-theta[:, None] * (x_cauchy - x) - g) * free
    # WᵀZ r with r = base + Z W M c. On the free variables base = (1 − θ t^c)·d (x^c − x = t^c·d there),
    # so WᵀZ base = (1 − θ t^c)·p^c, with p^c = WᵀZd left by the Cauchy search: no pass over W
    wv = (1 - theta * t_cauchy)[:, None] * p_cauchy + xp.einsum("nkl,nl->nk", G, Mc)
    K = M_inv - G / theta[:, None, None]
    u, singular = solve_rows(K, wv)
    newton = (base + _w(W, (Mc + u / theta[:, None]) * scale)) / theta[:, None] * free

    target = x_cauchy + newton
    projected = xp.clip(target, 0, 1)
    touches = (free & ((projected == 0) | (projected == 1))).any(axis=1)
    uphill = touches & (rowdot(projected - x, g) > 0)
    # cut the Newton step back to the box where the projection is not a descent direction
    ratio = steps_to_box(x_cauchy, newton)                                  # ∞ off the free set (newton = 0)
    blocking = xp.argmin(ratio, axis=1)                                     # the first variable to hit its bound
    alpha = xp.minimum(xp.take_along_axis(ratio, blocking[:, None], axis=1)[:, 0], 1)
    cut = x_cauchy + alpha[:, None] * newton
    blocked = alpha < 1
    bound_value = xp.where(newton[xp.arange(n), blocking] > 0, 1.0, 0.0).astype(x.dtype)
    cut[xp.arange(n)[blocked], blocking[blocked]] = bound_value[blocked]
    return xp.where(uphill[:, None], cut, projected), singular


def solve_rows(K, b):
    """u_n = K_n⁻¹ b_n for every row, and the mask of rows whose K_n is singular (their u_n = 0).

    NumPy's batched solve fails for the whole batch when one matrix is singular (CuPy's returns
    non-finite rows instead); the rare failing batch is then solved row by row."""
    xp = backend.get_array_module(K)
    try:
        u = xp.linalg.solve(K, b[..., None])[..., 0]
    except numpy.linalg.LinAlgError:
        u = xp.zeros_like(b)
        for i in range(K.shape[0]):
            try:
                u[i] = xp.linalg.solve(K[i], b[i])
            except numpy.linalg.LinAlgError:
                u[i] = xp.nan
    singular = ~xp.isfinite(u).all(axis=1)
    return xp.where(singular[:, None], 0, u), singular


def _track_free_set(st, free, rebuild_share):
    """Bring G = [Y S]ᵀZ[Y S] from the last free set Z to ``free``: add the variables that entered,
    subtract those that left (a gather of a few rows of W per problem); rows where more than
    ``rebuild_share``·D variables changed are rebuilt instead."""
    xp = backend.get_array_module(free)
    W, G = st["W"], st["G"]
    dim = W.shape[1]
    change = free != st["Z"]
    counts = change.sum(axis=1)
    rebuild = counts > int(dim * rebuild_share)
    if bool(rebuild.any()):
        rows = xp.nonzero(rebuild)[0]
        m = W.shape[2] // 2
        # slots fill from 0 (an empty one first), so the pairs in use are slots 0..used−1; the
        # other columns are zero, and so are their rows and columns of G
        used = m if "age" not in st else int(((st["age"][rows] >= 0) * xp.arange(1, m + 1)).max())
        if used == m:
            ZW = W[rows] * free[rows][:, :, None]
            G[rows] = xp.matmul(ZW.transpose(0, 2, 1), ZW)                 # (ZW)ᵀ(ZW) = WᵀZW
        else:
            cols = xp.concatenate([xp.arange(used), m + xp.arange(used)])
            ZW = W[rows[:, None], :, cols[None, :]].transpose(0, 2, 1) * free[rows][:, :, None]   # (k, D, 2·used)
            G[rows] = 0
            G[rows[:, None, None], cols[None, :, None], cols[None, None, :]] = xp.matmul(ZW.transpose(0, 2, 1), ZW)
        counts = xp.where(rebuild, 0, counts)
        change &= ~rebuild[:, None]
    most = int(counts.max())
    if most:
        # the changed variables of row i, packed into row i of (n, most) (padding: sign 0)
        flat = xp.flatnonzero(change)
        row, var = flat // dim, flat % dim
        slot = xp.arange(flat.size) - (xp.cumsum(counts) - counts)[row]
        order = xp.zeros((W.shape[0], most), dtype=flat.dtype)
        sign = xp.zeros((W.shape[0], most), dtype=W.dtype)
        order[row, slot] = var
        sign[row, slot] = free[row, var] * 2.0 - 1                          # +1 entered, −1 left
        Wc = W[xp.arange(W.shape[0])[:, None], order]                       # (n, most, 2m)
        G += xp.matmul((Wc * sign[:, :, None]).transpose(0, 2, 1), Wc)
    st["Z"] = free


# ---- step 3: line search -------------------------------------------------------------------------
def _search(fun, st, max_linesearch, search_rounds):
    """Moré–Thuente along d for every row with a search going (``lnsrlb``): up to ``search_rounds``
    evaluations now. Each trial is x + stp·d (z itself at stp = 1); it is kept in ``x_try`` etc.
    Returns the masks of rows whose step was accepted and of rows that used up ``max_linesearch``
    evaluations without one; both leave the search."""
    xp = backend.get_array_module(st["x"])
    search = st["search"]
    accepted = xp.zeros_like(st["searching"])
    exhausted = xp.zeros_like(accepted)
    rows = xp.nonzero(st["searching"])[0]
    for _ in range(search_rounds):
        if rows.size == 0:
            break
        s, d = search.stp[rows], st["d"][rows]
        xt = xp.where((s == 1)[:, None], st["z"][rows], st["x"][rows] + s[:, None] * d)
        ft, gt = fun(xt, st["idx"][rows])
        gdt = rowdot(gt, d)
        done = search.step(ft, gdt, rows)
        st["x_try"][rows], st["f_try"][rows], st["g_try"][rows], st["gd_try"][rows] = xt, ft, gt, gdt
        st["evaluations"][rows] += 1
        out = ~done & (st["evaluations"][rows] >= max_linesearch)
        accepted[rows[done]] = True
        exhausted[rows[out]] = True
        rows = rows[~done & ~out]
    st["searching"] &= ~(accepted | exhausted)
    return accepted, exhausted


# ---- step 4: the memory ------------------------------------------------------------------------
def update_memory(st, rows, stp, d, y, gd, gd_old, dtd, m):
    """Store s = stp·d, y for ``rows`` (mask) unless sᵀy ≤ ε·(−gᵀs) (``matupd``); θ = yᵀy / sᵀy."""
    xp = backend.get_array_module(d)
    sy = (gd - gd_old) * stp                       # sᵀy, as L-BFGS-B computes it
    good = rows & (sy > EPS * (-gd_old * stp))
    if not bool(good.any()):
        return
    r = xp.nonzero(good)[0]
    slot = xp.argmin(st["age"][r], axis=1)       # an empty slot (age −1) or the oldest pair
    s = stp[:, None] * d
    W, G, Z = st["W"], st["G"], st["Z"]
    W[r, :, slot] = y[r]
    W[r, :, m + slot] = s[r]
    st["age"][r, slot] = st["updates"][r]
    st["updates"][r] += 1
    # [Y S]ᵀ(Z y), [Y S]ᵀ(Z s) for G's new row and column, [Y S]ᵀs for SᵀS and SᵀY
    for v, j in ((y * Z, slot), (s * Z, m + slot)):
        products = _wt(W, v)[r]
        G[r, :, j] = products
        G[r, j, :] = products
    s_dot = _wt(W, s)[r]
    SS, SY = st["SS"], st["SY"]
    SS[r, slot, :] = s_dot[:, m:]
    SS[r, :, slot] = s_dot[:, m:]
    SS[r, slot, slot] = stp[r] ** 2 * dtd[r]
    SY[r, slot, :] = s_dot[:, :m]                  # s_newᵀ y_j: row of the newest pair
    SY[r, slot, slot] = sy[r]
    st["theta"][r] = rowdot(y[r], y[r]) / sy[r]
