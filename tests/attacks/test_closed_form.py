"""A 2-class linear model, where Eq. 1 is solved on paper.

With logits z = xW + b, write Δw = W[:, t] − W[:, y], Δb = b[t] − b[y] (t the other class)
and s(x) = Δw·x + Δb, the target's margin. Far from the box edges:

* the smallest perturbation that flips the class is the projection onto the boundary,
  ‖r‖₂ = |s(x)| / ‖Δw‖ (what minimal mode must find);
* at a fixed c, CE(x + r, t) = log(1 + e^{−s(x + r)}), and the minimiser of
  c‖r‖² + CE satisfies 2c·r = σ(−s(x + r))·Δw: r = u·Δw/‖Δw‖ with u ≥ 0 the root of
      2c·u = ‖Δw‖·σ(−(s(x) + ‖Δw‖·u)),
  whose left side increases and right side decreases in u (one root, found by bisection).
"""
import numpy
import pytest

from minidnn import backend
from minidnn.attacks import UNTARGETED, batched_lbfgs_attack, lbfgsb_attack
from minidnn.attacks.minimal import minimal_attack
from minidnn.layers import Dense
from minidnn.networks import Sequential

D, N = 30, 24


@pytest.fixture(scope="module")
def linear():
    """Sequential([Dense(30, 2)]) in float64 whose boundary passes near the centre of the box, and
    points uniform in [0.4, 0.6]^30 at distance 0.01–0.2 from it (the box never binds)."""
    rng = numpy.random.default_rng(0)
    with backend.use_backend("numpy"), backend.use_dtype("float64"):
        net = Sequential([Dense(D, 2, rng=rng)], (D,), "linear")
    W = rng.standard_normal((D, 2))
    b = numpy.array([0.0, -0.5 * (W[:, 1] - W[:, 0]).sum() + 0.3])
    net.layers[0].params["W"].data, net.layers[0].params["b"].data = W, b
    x = rng.uniform(0.4, 0.6, (4 * N, D))
    z = x @ W + b
    y = z.argmax(axis=1)
    t = 1 - y
    dw = (W[:, 1] - W[:, 0])[None, :] * numpy.where(t == 1, 1.0, -1.0)[:, None]     # (n, D): toward t
    db = (b[1] - b[0]) * numpy.where(t == 1, 1.0, -1.0)
    margin = (dw * x).sum(axis=1) + db                                              # s(x) < 0
    dist = -margin / numpy.linalg.norm(dw, axis=1)
    keep = numpy.flatnonzero((dist > 0.01) & (dist < 0.2))[:N]
    assert len(keep) == N
    return {"net": net, "x": x[keep], "y": y[keep], "t": t[keep], "dw": dw[keep], "margin": margin[keep],
            "dist": dist[keep]}


def analytic_minimiser(c, dw, margin):
    """r* (n, D) minimising c‖r‖² + CE(x + r, t) for the linear model (see the module docstring)."""
    a = numpy.linalg.norm(dw, axis=1)
    sigma = lambda s: 0.5 * numpy.tanh(0.5 * s) + 0.5
    lo, hi = numpy.zeros_like(a), a / (2 * c)            # residual < 0 at lo, > 0 at hi
    for _ in range(200):
        u = 0.5 * (lo + hi)
        positive = 2 * c * u - a * sigma(-(margin + a * u)) > 0
        hi, lo = numpy.where(positive, u, hi), numpy.where(positive, lo, u)
    return (0.5 * (lo + hi) / a)[:, None] * dw


@pytest.mark.parametrize("untargeted", [False, True], ids=["targeted", "untargeted"])
def test_minimal_mode_finds_the_distance_to_the_boundary(linear, untargeted):
    targets = numpy.full(N, UNTARGETED) if untargeted else linear["t"]
    result = minimal_attack(linear["net"], linear["x"], linear["y"], targets, steps=20)
    assert result.converged.all() and (result.predicted == linear["t"]).all()
    # no successful point can be closer than the boundary; the search must come within 0.1% of it
    numpy.testing.assert_allclose(result.l2, linear["dist"], rtol=1e-3)
    assert result.adversarial.min() >= 0 and result.adversarial.max() <= 1


@pytest.mark.parametrize("c", [0.5, 4.0])
@pytest.mark.parametrize("method", ["reference", "batched"])
def test_fixed_c_matches_the_analytic_minimiser(linear, method, c):
    if method == "reference":
        pytest.importorskip("scipy")
        result = lbfgsb_attack(linear["net"], linear["x"], linear["y"], linear["t"], c)
    else:
        result = batched_lbfgs_attack(linear["net"], linear["x"], linear["y"], linear["t"], c)
    expected = analytic_minimiser(c, linear["dw"], linear["margin"])
    r = result.adversarial.astype(numpy.float64) - linear["x"]
    error = numpy.linalg.norm(r - expected, axis=1) / numpy.linalg.norm(expected, axis=1)
    assert error.max() < 1e-3, f"{method}, c = {c}: worst relative error {error.max():.2e} (example {error.argmax()})"
    assert result.converged.all()
    assert result.adversarial.min() >= 0 and result.adversarial.max() <= 1


def test_the_analytic_minimiser_is_stationary(linear):
    """Check of the test's own algebra: the gradient of c‖r‖² + CE vanishes at r*."""
    c = 0.5
    r = analytic_minimiser(c, linear["dw"], linear["margin"])
    s = linear["margin"] + (linear["dw"] * r).sum(axis=1)
    gradient = 2 * c * r - (1 / (1 + numpy.exp(s)))[:, None] * linear["dw"]
    assert numpy.abs(gradient).max() < 1e-10
