"""On a small trained MLP and real MNIST images: the batched attack agrees with the reference
(scipy's L-BFGS-B), and the paper's constant-c search lands on the edge of 99.5% error.

Both batched minimisers are checked: "lbfgsb" (L-BFGS-B itself: within half a point, the same
verdict on 99.5% of images) and "projected" (its simpler relative: within a point).

The MLP (784-64-10, 3 epochs on 3,000 images) and its 300 held-out images come from
conftest.py; the tests skip cleanly when MNIST is absent.
"""
import numpy
import pytest

from minidnn.attacks import batched_lbfgs_attack, lbfgsb_attack
from minidnn.attacks.protocol import search_c

N_AGREE = 200          # images compared between batched and reference
N_SEARCH = 100         # images of the c search: 99.5% error on 100 images means all of them


def in_box(result):
    return result.adversarial.min() >= 0.0 and result.adversarial.max() <= 1.0


TOLERANCE = {  # algorithm: (error-rate points, share of identical verdicts, relative distortion)
    "lbfgsb": (0.005, 0.995, 0.005),
    "projected": (0.01, 0.98, 0.03),
}
_references = {}


@pytest.fixture(scope="module", params=sorted(TOLERANCE))
def scan(trained_mlp, request):
    """Batched attacks on the 200 images at c = 4, 4/√2, 2, ... down to the first c with ≥ 95% error.

    Returns {c: AttackResult}; the error rate falls as c grows (a larger c buys a smaller r).
    """
    m = trained_mlp
    x, y, t = m.x[:N_AGREE], m.y[:N_AGREE], m.targets[:N_AGREE]
    results, c = {}, 4.0
    while c > 1e-3:
        results[c] = batched_lbfgs_attack(m.net, x, y, t, c, algorithm=request.param)
        if results[c].error_rate >= 0.95:
            break
        c /= numpy.sqrt(2)
    return results


def agreement(trained_mlp, result, c):
    """The reference attack on the same images at the same c; returns it after the comparisons."""
    pytest.importorskip("scipy")
    m = trained_mlp
    if c not in _references:
        _references[c] = lbfgsb_attack(m.net, m.x[:N_AGREE], m.y[:N_AGREE], m.targets[:N_AGREE], c)
    reference = _references[c]
    points, same, rel = TOLERANCE[result.meta["algorithm"]]
    assert in_box(reference) and in_box(result)
    story = (f"{result.meta['algorithm']}, c = {c:.4g}: error batched {100 * result.error_rate:.1f}% vs reference "
             f"{100 * reference.error_rate:.1f}%, target hit {100 * result.hit_target.mean():.1f}% vs "
             f"{100 * reference.hit_target.mean():.1f}%, mean distortion {result.mean_distortion:.5f} vs "
             f"{reference.mean_distortion:.5f}, mean iterations {result.iterations.mean():.1f} vs "
             f"{reference.iterations.mean():.1f}")
    assert abs(result.error_rate - reference.error_rate) <= points, story
    assert abs(result.hit_target.mean() - reference.hit_target.mean()) <= points, story
    assert result.mean_distortion == pytest.approx(reference.mean_distortion, rel=rel), story
    # per example: the same verdict almost everywhere (both are local searches on a non-convex f)
    assert (result.success == reference.success).mean() >= same, story
    return reference


def test_batched_agrees_with_reference_where_half_succeed(trained_mlp, scan):
    c = min(scan, key=lambda c: abs(scan[c].error_rate - 0.5))
    assert 0.3 <= scan[c].error_rate <= 0.7, {c: r.error_rate for c, r in scan.items()}
    agreement(trained_mlp, scan[c], c)


def test_batched_agrees_with_reference_where_nearly_all_succeed(trained_mlp, scan):
    c = min(scan)
    assert scan[c].error_rate >= 0.95, {c: r.error_rate for c, r in scan.items()}
    agreement(trained_mlp, scan[c], c)


def test_every_scanned_adversarial_is_in_the_box(scan):
    for c, result in scan.items():
        assert in_box(result), c
        assert len(result) == N_AGREE and numpy.isfinite(result.distortion).all()


def test_constant_c_search_lands_on_the_edge(trained_mlp):
    """search_c returns a c whose error is ≥ 99.5% on its subset, and 1.25·c already falls below."""
    m = trained_mlp
    x, y, t = m.x[-N_SEARCH:], m.y[-N_SEARCH:], m.targets[-N_SEARCH:]
    attack = lambda c: batched_lbfgs_attack(m.net, x, y, t, c)
    c, trace = search_c(attack, threshold=0.995, c0=1.0)
    chosen = [row for row in trace if row["c"] == c]
    assert chosen and chosen[0]["error_rate"] >= 0.995, trace
    failing = [row["c"] for row in trace if row["error_rate"] < 0.995]
    assert failing and min(f for f in failing if f > c) / c <= 1.05, trace     # bracketed to 5%
    assert attack(c).error_rate >= 0.995                                         # deterministic
    above = attack(1.25 * c)
    assert above.error_rate < 0.995, (c, above.error_rate, trace)
    assert in_box(above)


def test_search_c_protocol_on_a_known_error_curve():
    """With error(c) = 1 for c ≤ 0.3, falling after: bracketed by factors of 4, then bisected to 5%."""
    class Result:
        def __init__(self, error_rate):
            self.error_rate, self.mean_distortion = error_rate, 0.1

    curve = lambda c: Result(1.0 if c <= 0.3 else max(0.0, 1.3 - c))
    calls = []
    c, trace = search_c(lambda c: calls.append(c) or curve(c), threshold=0.995, c0=1.0)
    assert calls[:2] == [1.0, 0.25]                      # 1 fails, 1/4 passes: the bracket
    assert 0.3 / 1.05 <= c <= 0.305 and curve(c).error_rate >= 0.995
    assert [row["c"] for row in trace] == calls
    # passing everywhere: the largest c allowed; failing everywhere: a clear error
    c, _ = search_c(lambda c: Result(1.0), c0=1.0, c_max=100.0)
    assert c == 64.0
    with pytest.raises(RuntimeError, match=r"no c ≥ 0.001 reaches 99.5% adversarial error"):
        search_c(lambda c: Result(0.5), c0=1.0, c_min=1e-3)


def test_search_c_aims_at_the_best_error_when_some_examples_cannot_be_moved():
    """One example in forty never moves (error plateaus at 97.5% below c = 0.02): with
    unreachable='best' the search stops descending after three trials without a rise and
    bisects to the largest c that still reaches 97.5%; by default it raises."""
    class Result:
        def __init__(self, error_rate):
            self.error_rate, self.mean_distortion = error_rate, 0.1

    curve = lambda c: Result(0.975 if c <= 0.02 else max(0.0, 0.975 - 2 * (c - 0.02)))
    calls = []
    c, trace = search_c(lambda c: calls.append(c) or curve(c), threshold=0.995, c0=1.0, unreachable="best")
    assert 0.02 / 1.05 <= c <= 0.02 and max(r["error_rate"] for r in trace) == 0.975
    assert min(calls) >= 1.0 / 4 ** 6                          # gave up descending early, not at c_min
    with pytest.raises(RuntimeError, match="no c"):
        search_c(lambda c: curve(c), threshold=0.995, c0=1.0, c_min=1e-3)
    with pytest.raises(ValueError, match="unreachable"):
        search_c(lambda c: curve(c), unreachable="ignore")


def test_workers_split_the_examples_and_change_nothing(trained_mlp):
    """Two threads, each attacking its half with its own network copy, give exactly the records
    that attacking the two halves one after the other gives."""
    m = trained_mlp
    x, y, t = m.x[:60], m.y[:60], m.targets[:60]
    both = batched_lbfgs_attack(m.net, x, y, t, 1.0, workers=2)
    halves = [batched_lbfgs_attack(m.net, x[s], y[s], t[s], 1.0) for s in (slice(0, 30), slice(30, 60))]
    assert both.meta["workers"] == 2
    numpy.testing.assert_array_equal(both.adversarial, numpy.concatenate([h.adversarial for h in halves]))
    numpy.testing.assert_array_equal(both.iterations, numpy.concatenate([h.iterations for h in halves]))
    with pytest.raises(ValueError, match="workers"):
        batched_lbfgs_attack(m.net, x, y, t, 1.0, workers=0)
    with pytest.raises(ValueError, match="search_rounds applies to the lbfgsb"):
        batched_lbfgs_attack(m.net, x, y, t, 1.0, algorithm="projected", search_rounds=3)


def test_each_worker_draws_its_own_test_time_noise():
    from minidnn.attacks.batched import independent_noise
    from minidnn.attacks.objective import network_copy
    from minidnn.layers import Dense, GaussianNoise
    from minidnn.networks import Sequential
    net = Sequential([GaussianNoise(0.1, at_test=True, rng=7), Dense(4, 3, rng=0)], input_shape=(4,))
    x = numpy.zeros((5, 4))
    draws = [independent_noise(network_copy(net), w).layers[0].forward(x) for w in range(3)]
    numpy.testing.assert_array_equal(draws[0], net.layers[0].forward(x))   # worker 0: the network's own stream
    assert not numpy.allclose(draws[1], draws[0]) and not numpy.allclose(draws[2], draws[1])
    assert abs(draws[1].std() - 0.1) < 0.05                                  # still N(0, σ²) noise
    # a generator that cannot jump (SFC64) is reseeded, reproducibly
    def sfc_copy():
        copy = network_copy(net)
        copy.layers[0].rng = numpy.random.Generator(numpy.random.SFC64(3))
        return copy
    sfc = [independent_noise(sfc_copy(), 1).layers[0].forward(x) for _ in range(2)]
    numpy.testing.assert_array_equal(sfc[0], sfc[1])
    assert not numpy.allclose(sfc[0], sfc_copy().layers[0].forward(x))


def test_the_attack_gives_each_worker_its_own_noise(trained_mlp, monkeypatch):
    from minidnn.attacks import batched
    seen = []
    real = batched.independent_noise
    monkeypatch.setattr(batched, "independent_noise", lambda net, worker: seen.append(worker) or real(net, worker))
    m = trained_mlp
    batched_lbfgs_attack(m.net, m.x[:8], m.y[:8], m.targets[:8], 1.0, workers=2, maxiter=3)
    assert sorted(seen) == [0, 1]
