"""``minidnn gradcheck``: every layer kind and loss checked by finite differences, as a table."""
import numpy

from . import backend
from .gradcheck import check_layer, check_loss, check_network
from .layers import Conv2D, Dense, Flatten, GaussianBlur, MaxPool2D, ReLU, Reshape, Sigmoid, Softmax, Tanh
from .losses import BinaryCrossEntropy, MeanSquaredError, SoftmaxCrossEntropy


def _cases(rng):
    """(description, check thunk) pairs; ReLU and max-pool inputs kept away from their kinks."""
    def away_from_zero(shape):
        x = rng.standard_normal(shape)
        return x + 0.1 * numpy.sign(x)

    def distinct(shape):     # a permutation of spaced values: no ties in any pooling window
        return rng.permutation(numpy.prod(shape)).reshape(shape) * 0.1

    yield "Dense 5→4", lambda: check_layer(Dense(5, 4, rng=rng), rng.standard_normal((3, 5)))
    yield "Conv2D 3×2 kernel, stride (2,1), pad (1,2)", lambda: check_layer(
        Conv2D(2, 3, (3, 2), stride=(2, 1), padding=(1, 2), rng=rng), rng.standard_normal((2, 2, 7, 6)))
    yield "MaxPool2D 3×3, stride 2, pad 1", lambda: check_layer(MaxPool2D(3, 2, 1), distinct((2, 2, 7, 6)))
    yield "ReLU", lambda: check_layer(ReLU(), away_from_zero((3, 6)))
    yield "Sigmoid", lambda: check_layer(Sigmoid(), rng.standard_normal((3, 6)))
    yield "Tanh", lambda: check_layer(Tanh(), rng.standard_normal((3, 6)))
    yield "Softmax", lambda: check_layer(Softmax(), rng.standard_normal((3, 6)))
    yield "GaussianBlur size 5, σ 1.1 (zero padding)", lambda: check_layer(GaussianBlur(5), rng.uniform(size=(2, 1, 7, 6)))
    yield "Flatten", lambda: check_layer(Flatten(), rng.standard_normal((2, 3, 2, 2)))
    yield "Reshape", lambda: check_layer(Reshape((1, 2, 3)), rng.standard_normal((2, 6)))
    yield "SoftmaxCrossEntropy", lambda: check_loss(SoftmaxCrossEntropy(), rng.standard_normal((4, 5)),
                                                   rng.integers(0, 5, 4))
    yield "BinaryCrossEntropy", lambda: check_loss(BinaryCrossEntropy(), rng.standard_normal((4, 5)),
                                                  rng.uniform(size=(4, 5)))
    yield "MeanSquaredError", lambda: check_loss(MeanSquaredError(), rng.standard_normal((4, 5)),
                                                rng.uniform(size=(4, 5)))

    def small_convnet():
        from .networks import convnet
        net = convnet(sizes=(2, 3, 5), rng=rng)
        return check_network(net, rng.uniform(size=(2, 1, 28, 28)), numpy.array([3, 7]), SoftmaxCrossEntropy())
    yield "network: small ConvNet + cross-entropy", small_convnet


def run_suite(seed=0, verbose=True):
    """Run every check in float64; print one row per check; True when all pass."""
    rng = numpy.random.default_rng(seed)
    all_ok = True
    with backend.use_dtype("float64"):
        if verbose:
            print(f"{'check':<44}{'worst rel. err':>15}  {'where':<18}{'result':>7}")
        for name, thunk in _cases(rng):
            report = thunk()
            worst = report.worst
            all_ok &= report.ok
            if verbose:
                print(f"{name:<44}{worst.rel_error:15.2e}  {worst.name + str(list(worst.index)):<18}"
                      f"{'ok' if report.ok else 'FAIL':>7}")
    if verbose:
        print("criterion per entry: |analytic − numeric| ≤ 1e-6·max(|analytic|, |numeric|) + 1e-9, float64 central differences")
    return all_ok
