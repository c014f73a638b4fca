"""choose_targets: every rule, on hand-made logits where the answer is known."""
import numpy
import pytest

from minidnn.attacks import RULES, UNTARGETED, choose_targets
from minidnn.layers import Dense
from minidnn.networks import Sequential, mlp


def logits_network(k):
    """A network whose logits are its input: one Dense(k, k) layer with W = I, b = 0."""
    dense = Dense(k, k)
    dense.params["W"].data = numpy.eye(k, dtype=dense.W.dtype)
    dense.params["b"].data = numpy.zeros(k, dtype=dense.b.dtype)
    return Sequential([dense], (k,))


# rows: logits of one image; columns: classes 0..4
LOGITS = numpy.array([
    [5.0, 1.0, -2.0, 3.0, 0.0],     # label 0, correct: runner-up 3, least likely 2
    [0.5, 4.0, 2.0, -1.0, 1.0],     # label 2, misclassified as 1: runner-up 1 (the highest wrong), least likely 3
    [-3.0, 2.0, 1.0, 0.0, 6.0],     # label 0, whose own logit is the lowest: least likely must skip it → 3
], dtype=numpy.float32)
LABELS = numpy.array([0, 2, 0])


def test_runner_up_is_the_highest_wrong_logit():
    targets = choose_targets(logits_network(5), LOGITS, LABELS, "runner_up")
    numpy.testing.assert_array_equal(targets, [3, 1, 4])
    assert targets.dtype == numpy.int64


def test_least_likely_is_the_lowest_wrong_logit():
    targets = choose_targets(logits_network(5), LOGITS, LABELS, "least_likely")
    numpy.testing.assert_array_equal(targets, [2, 3, 3])


def test_untargeted_is_minus_one_everywhere():
    targets = choose_targets(None, LOGITS, LABELS, "untargeted")
    numpy.testing.assert_array_equal(targets, [UNTARGETED] * 3)
    assert UNTARGETED == -1


def test_given_takes_an_int_or_an_array():
    numpy.testing.assert_array_equal(choose_targets(None, LOGITS, LABELS, "given", given=4), [4, 4, 4])
    numpy.testing.assert_array_equal(choose_targets(None, LOGITS, LABELS, "given", given=[1, 3, 2]), [1, 3, 2])
    with pytest.raises(ValueError, match="needs the target labels"):
        choose_targets(None, LOGITS, LABELS, "given")


def test_unknown_rule_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown target rule 'nearest'.*'random'"):
        choose_targets(None, LOGITS, LABELS, "nearest")
    assert set(RULES) == {"random", "least_likely", "runner_up", "given", "untargeted"}


def test_random_is_uniform_over_the_wrong_labels_never_the_true_one():
    k, n = 10, 50_000
    labels = numpy.random.default_rng(5).integers(0, k, n)
    targets = choose_targets(mlp([4], n_in=3, n_out=k), None, labels, "random", rng=0)
    assert targets.shape == (n,) and targets.dtype == numpy.int64
    assert not (targets == labels).any()
    assert targets.min() >= 0 and targets.max() < k
    # each of the 90 (label, target ≠ label) pairs: expected n/(k(k−1)) ≈ 556, sd ≈ 23
    counts = numpy.zeros((k, k), dtype=int)
    numpy.add.at(counts, (labels, targets), 1)
    per_label = numpy.bincount(labels, minlength=k)[:, None] / (k - 1)
    off_diagonal = ~numpy.eye(k, dtype=bool)
    assert (counts[~off_diagonal] == 0).all()
    assert numpy.abs(counts / per_label - 1)[off_diagonal].max() < 0.2
    # and a chi-square over all pairs well within its 81-degrees-of-freedom range (p ≈ 1e-6 at 150)
    expected = numpy.broadcast_to(per_label, (k, k))[off_diagonal]
    chi2 = (((counts[off_diagonal] - expected) ** 2) / expected).sum()
    assert chi2 < 150


def test_random_is_reproducible_by_seed():
    labels = numpy.arange(200) % 10
    net = mlp([4], n_in=3, n_out=10)
    a = choose_targets(net, None, labels, "random", rng=7)
    b = choose_targets(net, None, labels, "random", rng=numpy.random.default_rng(7))
    c = choose_targets(net, None, labels, "random", rng=8)
    numpy.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_random_uses_num_classes_when_given():
    labels = numpy.zeros(1000, dtype=int)
    targets = choose_targets(None, None, labels, "random", rng=0, num_classes=3)
    assert set(numpy.unique(targets)) == {1, 2}
