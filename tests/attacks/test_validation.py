"""Bad input gives a ValueError that names the problem, for every attack, before any work is done."""
import numpy
import pytest

from minidnn.attacks import batched_lbfgs_attack, lbfgsb_attack
from minidnn.attacks.minimal import minimal_attack
from minidnn.attacks.protocol import search_c
from minidnn.attacks.run import attack_dataset
from minidnn.networks import mlp

D, K, N = 16, 4, 3


def reference(net, x, labels, targets, c):
    return lbfgsb_attack(net, x, labels, targets, c, maxiter=5)


def batched(net, x, labels, targets, c):
    return batched_lbfgs_attack(net, x, labels, targets, c, maxiter=5)


def minimal(net, x, labels, targets, c):
    return minimal_attack(net, x, labels, targets, c_init=c, steps=1, maxiter=5)


ATTACKS = [reference, batched, minimal]


@pytest.fixture
def case():
    """A tiny 16-4-4 network, three images in [0, 1], true labels and (wrong) targets."""
    rng = numpy.random.default_rng(0)
    net = mlp([4], n_in=D, n_out=K, rng=0)
    x = rng.uniform(0, 1, (N, D))
    return net, x, numpy.array([0, 1, 2]), numpy.array([1, 2, 3])


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("c", [0.0, -1.0, float("nan")])
def test_c_must_be_positive(attack, c, case):
    net, x, labels, targets = case
    with pytest.raises(ValueError, match=r"constant c must be > 0"):
        attack(net, x, labels, targets, c)


@pytest.mark.parametrize("attack", ATTACKS)
def test_target_equal_to_true_label(attack, case):
    net, x, labels, targets = case
    targets = targets.copy()
    targets[1] = labels[1]
    with pytest.raises(ValueError, match=r"1 target labels equal the true label"):
        attack(net, x, labels, targets, 1.0)


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("bad", [1.5, -0.1])
def test_images_outside_the_box(attack, bad, case):
    net, x, labels, targets = case
    x = x.copy()
    x[2, 5] = bad
    with pytest.raises(ValueError, match=r"images must lie in the box \[0, 1\]"):
        attack(net, x, labels, targets, 1.0)


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_images_not_finite(attack, bad, case):
    net, x, labels, targets = case
    x = x.copy()
    x[0, 3] = bad
    with pytest.raises(ValueError, match=r"images must be finite: 1 pixels are NaN or infinite"):
        attack(net, x, labels, targets, 1.0)


@pytest.mark.parametrize("attack", ATTACKS)
def test_labels_shape_must_match_images(attack, case):
    net, x, labels, targets = case
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\)"):
        attack(net, x, labels[:2], targets[:2], 1.0)
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\)"):
        attack(net, x, labels[:, None], targets, 1.0)


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("untargeted", [False, True], ids=["targeted", "untargeted (-1)"])
def test_targets_shape_must_match_labels(attack, untargeted, case):
    net, x, labels, targets = case
    bad = numpy.full(2, -1) if untargeted else targets[:2]
    with pytest.raises(ValueError, match=r"targets must have shape \(3,\)"):
        attack(net, x, labels, bad, 1.0)


@pytest.mark.parametrize("attack", ATTACKS)
def test_labels_and_targets_must_be_classes_of_the_network(attack, case):
    net, x, labels, targets = case
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.3"):
        attack(net, x, numpy.array([0, 1, 7]), targets, 1.0)
    with pytest.raises(ValueError, match=r"target labels must be in 0\.\.3"):
        attack(net, x, labels, numpy.array([1, 2, 4]), 1.0)
    with pytest.raises(ValueError, match=r"target labels must be in 0\.\.3"):   # −1 only means "untargeted" everywhere
        attack(net, x, labels, numpy.array([1, -1, 3]), 1.0)


def test_minimal_search_factor_must_exceed_one(case):
    net, x, labels, targets = case
    with pytest.raises(ValueError, match=r"factor must be > 1"):
        minimal_attack(net, x, labels, targets, factor=1.0)


def test_attack_dataset_rejects_unknown_method(case):
    net, x, labels, targets = case
    with pytest.raises(ValueError, match=r"unknown attack method 'fgsm'"):
        attack_dataset(net, x, labels, targets, 1.0, method="fgsm", progress=False)


@pytest.mark.parametrize("kwargs", [{"threshold": 0.0}, {"threshold": 1.5}, {"ratio": 1.0}, {"c0": 0.0}])
def test_search_c_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError, match=r"need 0 < threshold ≤ 1, ratio > 1 and c0 > 0"):
        search_c(lambda c: None, **kwargs)


def test_the_reference_checks_its_start_points_and_starting_at_x_changes_nothing(case):
    net, x, labels, targets = case
    plain = lbfgsb_attack(net, x, labels, targets, 0.5, maxiter=5)
    same = lbfgsb_attack(net, x, labels, targets, 0.5, maxiter=5, start=x)
    numpy.testing.assert_array_equal(plain.adversarial, same.adversarial)
    with pytest.raises(ValueError, match="start must have the images' shape"):
        lbfgsb_attack(net, x, labels, targets, 0.5, start=x[:, :-1])
    with pytest.raises(ValueError, match=r"start points must lie in the box \[0, 1\]"):
        lbfgsb_attack(net, x, labels, targets, 0.5, start=x + 2)
