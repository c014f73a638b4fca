"""Which label each adversarial aims at (seeded)."""
import numpy

from .. import backend

RULES = ("random", "least_likely", "runner_up", "given", "untargeted")
UNTARGETED = -1


def choose_targets(net, x, labels, rule="random", rng=None, given=None, num_classes=None):
    """Target labels (N,) as NumPy int64; ``UNTARGETED`` (−1) everywhere for 'untargeted'.

    random: uniform over the wrong labels, from the seeded Generator ``rng``;
    least_likely / runner_up: the lowest / highest logit of the clean image among the
    wrong labels (runner-up: the second-highest, or the highest when misclassified);
    given: ``given`` (an int or an (N,) array).
    """
    labels = backend.to_numpy(labels).astype(numpy.int64)
    n = len(labels)
    if rule == "untargeted":
        return numpy.full(n, UNTARGETED, dtype=numpy.int64)
    if rule == "given":
        if given is None:
            raise ValueError("target rule 'given' needs the target labels")
        return numpy.broadcast_to(numpy.asarray(given, dtype=numpy.int64), (n,)).copy()
    if rule == "random":
        k = num_classes or int(net.output_shape_[0])
        rng = rng if isinstance(rng, numpy.random.Generator) else numpy.random.default_rng(0 if rng is None else rng)
        # a uniform draw among the k − 1 wrong labels: shift past the true label
        draw = rng.integers(0, k - 1, size=n)
        return draw + (draw >= labels)
    if rule in ("least_likely", "runner_up"):
        logits = backend.to_numpy(net.predict_logits(x)).astype(numpy.float64)
        if rule == "least_likely":                  # never the true label, even where its logit is lowest
            logits[numpy.arange(n), labels] = numpy.inf
            return logits.argmin(axis=1)
        logits[numpy.arange(n), labels] = -numpy.inf
        return logits.argmax(axis=1)
    raise ValueError(f"unknown target rule {rule!r}; choose one of {RULES}")
