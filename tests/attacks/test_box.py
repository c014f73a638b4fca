"""The box: every returned adversarial satisfies 0 ≤ x' ≤ 1 exactly, whichever attack made it.

Images like MNIST's (most pixels exactly 0, some exactly 1) and a small c, so that the
unconstrained minimiser would leave the box and the bounds are really in play.
"""
import numpy
import pytest

from minidnn.attacks import (UNTARGETED, AttackObjective, batched_lbfgs_attack, choose_targets, lbfgsb_attack,
                             network_copy)
from minidnn.attacks.minimal import minimal_attack
from minidnn.networks import mlp

D, N = 64, 12


@pytest.fixture(scope="module")
def case():
    rng = numpy.random.default_rng(3)
    net = mlp([32], n_in=D, rng=3)
    kind = rng.choice(3, size=(N, D), p=[0.6, 0.2, 0.2])          # 0: black, 1: white, 2: grey
    x = numpy.where(kind == 0, 0.0, numpy.where(kind == 1, 1.0, rng.uniform(0.05, 0.95, (N, D))))
    x = x.astype(numpy.float32)
    labels = net.predict(x)
    targets = choose_targets(net, x, labels, "random", rng=3)
    return net, x, labels, targets


def attacks():
    yield "reference", lambda net, x, y, t: lbfgsb_attack(net, x, y, t, 0.02)
    yield "batched", lambda net, x, y, t: batched_lbfgs_attack(net, x, y, t, 0.02)
    yield "batched float32", lambda net, x, y, t: batched_lbfgs_attack(net, x, y, t, 0.02, dtype="float32")
    yield "minimal", lambda net, x, y, t: minimal_attack(net, x, y, t, c_init=0.02, steps=4)


@pytest.mark.parametrize("untargeted", [False, True], ids=["targeted", "untargeted"])
@pytest.mark.parametrize("name,attack", list(attacks()), ids=[n for n, _ in attacks()])
def test_adversarials_stay_in_the_box(case, name, attack, untargeted):
    if name == "reference":
        pytest.importorskip("scipy")
    net, x, labels, targets = case
    result = attack(net, x, labels, numpy.full(N, UNTARGETED) if untargeted else targets)
    adv = result.adversarial
    assert adv.shape == x.shape and numpy.isfinite(adv).all()
    assert adv.min() >= 0.0 and adv.max() <= 1.0, f"{name}: values in [{adv.min()}, {adv.max()}]"
    assert result.success.mean() >= 0.5
    # the bounds were in play: pixels moved onto 0 or 1 ...
    moved_onto_bound = ((adv == 0) | (adv == 1)) & (adv != x)
    assert moved_onto_bound.any(), f"{name}: no pixel was moved onto a bound"
    if name != "minimal":   # ... and at the optimum, pixels held there by a gradient pointing out of the box
        aim = labels if untargeted else targets
        objective = AttackObjective(network_copy(net, numpy.float64), 0.02, x.astype(numpy.float64), aim,
                                    untargeted=untargeted)
        _, g, _ = objective(adv.astype(numpy.float64))
        held = ((adv == 0) & (g > 1e-3)) | ((adv == 1) & (g < -1e-3))
        assert held.sum() >= N, f"{name}: only {held.sum()} pixels held at a bound"
