"""The batched L-BFGS-B (minidnn/attacks/lbfgsb.py) takes scipy's steps.

Whole runs are compared with scipy.optimize.minimize(method="L-BFGS-B") one problem at a
time on smooth non-convex box problems (iteration counts and solutions); the Moré–Thuente
line search with scipy's own port of MINPACK-2's dcsrch, step by step; and the pieces that
have shortcuts (Cauchy search in chunks, the incrementally kept WᵀZZᵀW) with their direct
versions.
"""
import types

import numpy
import pytest
from hypothesis import given, settings, strategies as st

from minidnn.attacks.lbfgsb import (ABNORMAL, CONVERGED, MAXITER, _accumulate_states, _track_free_set, cauchy_point,
                                    cholesky_succeeds, middle_matrix, minimize_box, steps_to_box)
from minidnn.attacks.linesearch import MoreThuente

scipy_optimize = pytest.importorskip("scipy.optimize")


def box_problems(n, dim, seed):
    """f_n(x) = ½‖B_n x − y_n‖² + 0.1·Σ softplus(3x) + 0.5·Σ sin(4x): smooth, non-convex, optima on
    the box's faces and inside it. Returns fun(x, rows) -> (f, g) in float64."""
    rng = numpy.random.default_rng(seed)
    B = rng.standard_normal((n, dim + 5, dim)) / numpy.sqrt(dim)
    y = 2 * rng.standard_normal((n, dim + 5))

    def fun(x, rows):
        residual = numpy.einsum("nkd,nd->nk", B[rows], x) - y[rows]
        f = (0.5 * (residual ** 2).sum(1) + 0.1 * numpy.logaddexp(0, 3 * x).sum(1)
             + 0.5 * numpy.sin(4 * x).sum(1))
        g = numpy.einsum("nkd,nk->nd", B[rows], residual) + 0.3 / (1 + numpy.exp(-3 * x)) + 2 * numpy.cos(4 * x)
        return f, g
    return fun


def scipy_solve(fun, x0, row, memory, maxiter):
    res = scipy_optimize.minimize(lambda v: tuple(a[0] for a in fun(v[None], numpy.array([row]))), x0,
                                  jac=True, method="L-BFGS-B", bounds=[(0.0, 1.0)] * x0.size,
                                  options={"maxiter": maxiter, "maxcor": memory})
    return res


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), dim=st.integers(3, 40), memory=st.integers(1, 10))
def test_every_row_takes_scipys_iterations(seed, dim, memory):
    n = 12
    fun = box_problems(n, dim, seed)
    x0 = numpy.random.default_rng(seed + 1).uniform(0, 1, (n, dim))
    x0[:, : dim // 3] = 0.0                              # some variables start on a face of the box
    x, its, status = minimize_box(fun, x0.copy(), maxiter=200, memory=memory)
    assert x.min() >= 0 and x.max() <= 1
    identical = 0
    for row in range(n):
        res = scipy_solve(fun, x0[row], row, memory, 200)
        story = f"row {row}: scipy {res.nit} iterations ({res.message}), batched {its[row]} (status {status[row]})"
        # the same path to rounding: a row may stop one iteration apart when ‖P(x − g) − x‖ ends near pgtol
        assert abs(int(its[row]) - res.nit) <= 1, story
        assert numpy.abs(x[row] - numpy.clip(res.x, 0, 1)).max() < 1e-5, story
        assert fun(x[row:row + 1], numpy.array([row]))[0][0] == pytest.approx(res.fun, rel=1e-9), story
        assert (status[row] == CONVERGED) == res.success, story
        identical += int(its[row] == res.nit and numpy.abs(x[row] - numpy.clip(res.x, 0, 1)).max() < 1e-10)
    assert identical >= 0.75 * n, f"only {identical} of {n} rows took exactly scipy's steps"


def test_the_iteration_limit_stops_each_row_where_scipy_stops():
    n, dim = 6, 25
    fun = box_problems(n, dim, 3)
    x0 = numpy.full((n, dim), 0.5)
    x, its, status = minimize_box(fun, x0.copy(), maxiter=4)
    assert (status == MAXITER).sum() >= n - 1                  # (one row converges in 3)
    for row in range(n):
        res = scipy_solve(fun, x0[row], row, 10, 4)
        assert its[row] == res.nit and (status[row] == MAXITER) == (not res.success)
        assert numpy.abs(x[row] - res.x).max() < 1e-10


@pytest.mark.parametrize("seed, max_linesearch", [(0, 20), (1, 20), (2, 20), (0, 2), (2, 2)])
def test_waiting_line_searches_change_no_row(seed, max_linesearch):
    """A row whose search outlasts ``search_rounds`` goes on in the next iteration: each row still
    takes exactly the steps it takes when the batch waits for every search."""
    n, dim = 16, 30
    fun = box_problems(n, dim, seed)
    x0 = numpy.random.default_rng(seed).uniform(0, 1, (n, dim))
    x0[:, :8] = 0.0
    evaluations = []
    counting = lambda x, rows: evaluations.append(len(rows)) or fun(x, rows)
    x_all, its_all, status_all = minimize_box(counting, x0.copy(), memory=5, max_linesearch=max_linesearch)
    calls_waiting_for_all = len(evaluations)
    evaluations.clear()
    x_one, its_one, status_one = minimize_box(counting, x0.copy(), memory=5, max_linesearch=max_linesearch,
                                              search_rounds=1)
    numpy.testing.assert_array_equal(x_one, x_all)
    numpy.testing.assert_array_equal(its_one, its_all)
    numpy.testing.assert_array_equal(status_one, status_all)
    assert len(evaluations) < calls_waiting_for_all       # fewer calls: the slow searches were carried over
    if max_linesearch == 2:                       # searches that run out of evaluations and end the row too
        assert (status_all == ABNORMAL).any()
    with pytest.raises(ValueError, match="search_rounds"):
        minimize_box(fun, x0.copy(), search_rounds=0)
    with pytest.raises(ValueError, match="max_linesearch"):
        minimize_box(fun, x0.copy(), max_linesearch=0)


def test_searches_wait_by_default_on_cupy_only():
    """search_rounds=None: GPU_SEARCH_ROUNDS on CuPy (capped by max_linesearch), no waiting elsewhere."""
    from minidnn.attacks import lbfgsb
    cupy_like = types.SimpleNamespace(__name__="cupy")
    assert lbfgsb.default_search_rounds(cupy_like) == lbfgsb.GPU_SEARCH_ROUNDS == 3
    assert lbfgsb.default_search_rounds(cupy_like, max_linesearch=2) == 2
    assert lbfgsb.default_search_rounds(numpy) == 20
    assert lbfgsb.default_search_rounds(numpy, max_linesearch=7) == 7


def test_a_point_already_stationary_takes_no_iteration():
    fun = box_problems(3, 5, 0)
    x0 = numpy.zeros((3, 5))
    # f_n(x) + Σ x·(large) has its gradient pushing every variable out of the box at 0: a KKT point
    push = lambda x, rows: (fun(x, rows)[0] + 100 * x.sum(1), fun(x, rows)[1] + 100)
    x, its, status = minimize_box(push, x0.copy())
    assert (its == 0).all() and (status == CONVERGED).all() and (x == 0).all()


def test_a_line_search_without_descent_ends_the_row_as_scipy_does():
    # the gradient lies: it points uphill, so every search fails; with no memory to drop, stop
    def liar(x, rows):
        return (x * x).sum(1), -2 * x - 1
    x0 = numpy.full((2, 4), 0.5)
    x, its, status = minimize_box(liar, x0.copy())
    assert (status == ABNORMAL).all() and (its == 0).all() and numpy.array_equal(x, x0)


# ---- the line search -----------------------------------------------------------------------
def one_dimensional(seed, n):
    """φ_n(t) = a(t − t0)² + b·sin(ωt) + c·t⁴ − s·t, φ'(0) < 0: quadratic-ish, wiggly, quartic."""
    rng = numpy.random.default_rng(seed)
    a, t0, b = rng.uniform(0.1, 3, n), rng.uniform(0.2, 4, n), rng.uniform(0, 1, n)
    w, c, s = rng.uniform(1, 8, n), rng.uniform(0, 0.3, n), rng.uniform(0, 2, n)
    phi = lambda t, i: a[i] * (t - t0[i]) ** 2 + b[i] * numpy.sin(w[i] * t) + c[i] * t ** 4 - s[i] * t
    dphi = lambda t, i: 2 * a[i] * (t - t0[i]) + b[i] * w[i] * numpy.cos(w[i] * t) + 4 * c[i] * t ** 3 - s[i]
    return phi, dphi


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 10_000), first=st.sampled_from([0.05, 1.0, 3.0]))
def test_more_thuente_takes_the_minpack_steps(seed, first):
    from scipy.optimize._dcsrch import DCSRCH
    n, stpmax = 64, 20.0
    phi, dphi = one_dimensional(seed, n)
    every = numpy.arange(n)
    keep = dphi(numpy.zeros(n), every) < 0
    rows_all = every[keep]
    f0, g0 = phi(numpy.zeros(n), every)[keep], dphi(numpy.zeros(n), every)[keep]
    search = MoreThuente(f0, g0, numpy.full(keep.sum(), first), numpy.full(keep.sum(), stpmax))
    trials = [[] for _ in rows_all]
    rows = numpy.arange(keep.sum())
    for _ in range(30):
        if rows.size == 0:
            break
        t = search.stp[rows]
        for r, ti in zip(rows, t):
            trials[r].append(ti)
        done = search.step(phi(t, rows_all[rows]), dphi(t, rows_all[rows]), rows)
        rows = rows[~done]
    assert rows.size == 0
    for r, i in enumerate(rows_all):
        seen = []
        ls = DCSRCH(lambda t: (seen.append(t), phi(t, i))[1], lambda t: dphi(t, i), ftol=1e-3, gtol=0.9, xtol=0.1,
                    stpmin=0.0, stpmax=stpmax)
        stp, _, _, task = ls(first, phi0=f0[r], derphi0=g0[r], maxiter=30)
        assert trials[r] == pytest.approx(seen, rel=1e-12, abs=1e-15), f"problem {i}"
        # scipy's port returns no step after a warning (e.g. rounding); L-BFGS-B then takes the last one
        assert search.stp[r] == pytest.approx(seen[-1] if stp is None else stp, rel=1e-12), (i, task)


# ---- the shortcuts ---------------------------------------------------------------------------
def memory_state(n, dim, m, seed):
    """A valid L-BFGS memory (sᵀy > 0) for n rows: W = [Y S], SS, SY, ages, θ."""
    rng = numpy.random.default_rng(seed)
    S = rng.standard_normal((n, dim, m))
    Y = S + 0.3 * rng.standard_normal((n, dim, m))
    age = numpy.tile(numpy.arange(m), (n, 1))
    SS = numpy.einsum("ndi,ndj->nij", S, S)
    SY = numpy.einsum("ndi,ndj->nij", S, Y)
    theta = numpy.einsum("ndi,ndi->n", Y[..., -1:], Y[..., -1:]) / numpy.einsum("ndi,ndi->n", S[..., -1:], Y[..., -1:])
    return numpy.concatenate([Y, S], axis=2), SS, SY, age, theta


def cauchy_case(n, dim, m, seed, at_lower, at_upper=0):
    """Inputs of cauchy_point: x in the box with its first ``at_lower`` variables at 0 and the next
    ``at_upper`` at 1, a gradient, and a valid memory: (x, g, theta, W, M)."""
    rng = numpy.random.default_rng(seed)
    W, SS, SY, age, theta = memory_state(n, dim, m, seed)
    M = middle_matrix(SS, SY, age, theta)[1]
    x = rng.uniform(0, 1, (n, dim))
    x[:, :at_lower] = 0
    x[:, at_lower:at_lower + at_upper] = 1
    return x, 3 * rng.standard_normal((n, dim)), theta, W, M


@pytest.mark.parametrize("ties", [False, True])
def test_cauchy_search_in_chunks_gives_the_one_pass_answer(ties):
    dim = 60
    x, g, theta, W, M = cauchy_case(16, dim, 4, 0, at_lower=10, at_upper=5)
    if ties:                       # many equal breakpoints, also across the edges of the chunks
        rng = numpy.random.default_rng(1)
        x = numpy.round(4 * x) / 4
        g = numpy.where(g > 0, 1.0, -1.0) * numpy.where(rng.uniform(size=g.shape) < 0.5, 0.5, 2.0)
    whole = cauchy_point(x, g, theta, W, M, chunk=dim)
    chunked = cauchy_point(x, g, theta, W, M, chunk=2)         # many rows pass several chunks
    for a, b in zip(whole, chunked):
        numpy.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    x_cauchy, free = whole[0], whole[4]
    assert x_cauchy.min() >= 0 and x_cauchy.max() <= 1
    assert (x_cauchy[~free] == 0).sum() + (x_cauchy[~free] == 1).sum() == (~free).sum()   # fixed ⇒ on a bound


@pytest.mark.parametrize("filled", [None, 0, 2, 3])
def test_the_free_set_gram_matrix_is_kept_exactly(filled):
    """filled: rows 2.. use the memory's first ``filled`` slots, row 1 one slot fewer, row 0 none;
    empty slots have zero columns. None: no ages given, every column taken as in use."""
    n, dim, m = 5, 40, 3
    rng = numpy.random.default_rng(1)
    W = rng.standard_normal((n, dim, 2 * m))
    st = {"W": W, "G": numpy.zeros((n, 2 * m, 2 * m)), "Z": numpy.zeros((n, dim), dtype=bool)}
    if filled is not None:
        slots = numpy.full(n, filled)
        slots[0], slots[1] = 0, max(filled - 1, 0)
        empty = numpy.arange(m)[None, :] >= slots[:, None]                   # (n, m)
        W *= ~numpy.concatenate([empty, empty], axis=1)[:, None, :]          # empty slots: zero columns
        st["age"] = numpy.where(empty, -1, numpy.arange(m)[None, :])
    free = rng.uniform(size=(n, dim)) < 0.5
    for step in range(12):
        flip = rng.uniform(size=(n, dim)) < (0.5 if step == 5 else 0.05)     # one big change: a rebuild
        if step in (3, 8):
            flip[1] = rng.uniform(size=dim) < 0.5                            # one row rebuilt, the others updated
        free = free ^ flip
        _track_free_set(st, free, rebuild_share=1 / 8)
        direct = numpy.einsum("ndi,nd,ndj->nij", W, free, W)
        numpy.testing.assert_allclose(st["G"], direct, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("memory, max_linesearch, search_rounds", [(5, 20, None), (3, 2, 1), (10, 3, 2), (1, 20, 1)])
def test_the_gram_matrix_matches_the_free_set_throughout_a_run(monkeypatch, memory, max_linesearch, search_rounds):
    """G = Wᵀ diag(Z) W after every iteration of whole runs: rows without memory, memory drops,
    line searches carried into the next iteration, the memory update and compaction."""
    import minidnn.attacks.lbfgsb as lbfgsb
    checked = []
    iterate = lbfgsb._iterate

    def checked_iterate(fun, st, *args):
        iterate(fun, st, *args)
        direct = numpy.einsum("ndi,nd,ndj->nij", st["W"], st["Z"], st["W"])
        numpy.testing.assert_allclose(st["G"], direct, rtol=1e-10, atol=1e-10)
        checked.append(bool(st["searching"].any()))
    monkeypatch.setattr(lbfgsb, "_iterate", checked_iterate)
    n, dim = 24, 40
    fun = box_problems(n, dim, 4)
    x0 = numpy.random.default_rng(4).uniform(0, 1, (n, dim))
    x0[:, :10] = 0
    minimize_box(fun, x0, memory=memory, max_linesearch=max_linesearch, search_rounds=search_rounds)
    assert len(checked) > 10
    if search_rounds is not None:
        assert any(checked), "no line search was carried into the next iteration"


def test_a_singular_reduced_system_is_flagged_not_fatal():
    from minidnn.attacks.lbfgsb import solve_rows
    K = numpy.stack([numpy.eye(3) * 2, numpy.ones((3, 3)), numpy.diag([1.0, 2.0, 4.0])])
    b = numpy.ones((3, 3))
    u, singular = solve_rows(K, b)
    assert singular.tolist() == [False, True, False]
    numpy.testing.assert_allclose(u, [[0.5, 0.5, 0.5], [0, 0, 0], [1, 0.5, 0.25]])


def test_cauchy_chunks_on_the_strict_stand_in(strict):
    """The later-chunk branch (rows passing more than one chunk of breakpoints) on the strict
    CuPy stand-in: no silent host/device mix, NumPy's numbers exactly."""
    x, g, theta, W, M = cauchy_case(8, 30, 3, 2, at_lower=6)
    expected = cauchy_point(x, g, theta, W, M, chunk=2)
    fixed = ((x <= 0) & (g >= 0)) | ((x >= 1) & (g <= 0))
    passed = (~expected[4] & ~fixed).sum(axis=1)              # breakpoints passed on the way
    assert passed.max() > 2                                   # so some rows went past the first chunk
    got = cauchy_point(*(strict.asarray(a) for a in (x, g, theta, W, M)), chunk=2)
    for want, have in zip(expected, got):
        numpy.testing.assert_array_equal(strict.asnumpy(have), want)


# ---- the element-wise forms that replace where/cumsum/eigvalsh/inv ---------------------------
def test_steps_to_the_box_edge_match_the_case_by_case_formula():
    rng = numpy.random.default_rng(3)
    x = rng.uniform(0, 1, (6, 50))
    x[:, :8] = 0
    x[:, 8:16] = 1
    d = rng.standard_normal((6, 50))
    d[:, ::5] = 0
    d[:, 1::7] = -0.0
    with numpy.errstate(divide="ignore", invalid="ignore"):
        expected = numpy.where(d < 0, -x / d, numpy.where(d > 0, (1 - x) / d, numpy.inf))
    got = steps_to_box(x, d)
    numpy.testing.assert_array_equal(got, expected)           # bit for bit, ∞ where d = 0
    assert (got[:, :8][d[:, :8] < 0] == 0).all() and (got[:, 8:16][d[:, 8:16] > 0] == 0).all()
    # a variable pushed past its bound by rounding can move no further (scipy's stpmx = 0), never backwards
    assert steps_to_box(numpy.array([[-1e-17, 1 + 1e-15]]), numpy.array([[-1.0, 2.0]])).tolist() == [[0.0, 0.0]]


def test_states_accumulate_in_cumsums_order():
    for shape in [(7, 33, 6), (7, 33)]:                     # the chunk's C and p, and its Δ
        a = numpy.random.default_rng(4).standard_normal(shape).astype(numpy.float32)
        expected = numpy.cumsum(a, axis=1)
        _accumulate_states(a)
        numpy.testing.assert_array_equal(a, expected)
    with pytest.raises(ValueError, match="form must be one of"):
        _accumulate_states(a, form="scan")


def test_the_cholesky_test_agrees_with_the_eigenvalues():
    rng = numpy.random.default_rng(5)
    A = rng.standard_normal((400, 6, 6))
    T = A @ A.transpose(0, 2, 1) + rng.uniform(-3, 1, (400, 1, 1)) * numpy.eye(6)   # about half indefinite
    T[0] = numpy.diag([1.0, 1, 1, 0, 1, 1])                                          # singular
    T[1, 2, 2] = numpy.nan
    expected = numpy.linalg.eigvalsh(numpy.nan_to_num(T)).min(axis=1) > 0
    expected[1] = False
    got = cholesky_succeeds(T)
    assert 100 < expected.sum() < 300
    assert got.tolist() == expected.tolist()


def test_the_middle_matrix_is_the_inverse_of_its_compact_form():
    W, SS, SY, age, theta = memory_state(6, 30, 4, 6)
    age[2] = [-1, 0, 1, -1]                         # empty slots (their vectors are zero)
    W[2, :, [0, 3, 4, 7]] = 0
    SS[2][[0, 3]], SS[2][:, [0, 3]], SY[2][[0, 3]], SY[2][:, [0, 3]] = 0, 0, 0, 0
    M_inv, M, bad = middle_matrix(SS, SY, age, theta)
    assert not bad.any()
    numpy.testing.assert_allclose(M @ M_inv, numpy.broadcast_to(numpy.eye(8), M.shape), atol=1e-10)
    M_inv32, M32, _ = middle_matrix(*(a.astype(numpy.float32) for a in (SS, SY)), age, theta.astype(numpy.float32))
    assert M32.dtype == M_inv32.dtype == numpy.float32                        # no silent upcast
    numpy.testing.assert_allclose(M32, M, rtol=1e-3, atol=1e-4)
