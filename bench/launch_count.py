"""Kernel launches per training step on CuPy, counted on the CPU.

    python bench/launch_count.py [--models N100-100-10,ConvNet]

At a batch of 128 a GPU training step is launch-bound: each array operation is a kernel launch
that takes longer to issue than to run. This counts them without a GPU. One training step of each
paper model (batch 128, SGD with momentum and weight decay, as bench/train_throughput.py) runs on
the strict CuPy stand-in (tests/support/strict_xp.py), and every operation that would launch a
kernel on CuPy is counted: each new array an operation returns (views are free), each in-place
update, each assignment into an array. Then the same step again with minidnn's CUDA kernels: their
entry points are replaced by their array code, run uncounted, and each call counts one launch.
Reported per model and per source file; the step's second run is counted (the first allocates the
optimizer's slots).
"""
import argparse
import collections
import contextlib
import os
import sys

import numpy

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from support import strict_xp  # noqa: E402  (the stand-in lives with the tests)

from minidnn import backend  # noqa: E402
from minidnn.layers import MaxPool2D, ReLU, Sigmoid, activation_kernels, im2col, im2col_kernels  # noqa: E402
from minidnn.layers import pooling_kernels  # noqa: E402
from minidnn import loss_kernels, losses  # noqa: E402
from minidnn.losses import SoftmaxCrossEntropy  # noqa: E402
from minidnn.networks import build_model  # noqa: E402
from minidnn.training import SGD, kernels  # noqa: E402

BATCH = 128
counts = collections.Counter()
state = {"counting": False, "by_function": False}
PACKAGE = os.path.dirname(os.path.abspath(backend.__file__)) + os.sep
BACKEND = os.path.abspath(backend.__file__)


def _source():
    """The minidnn file (and function, with state["by_function"]) that asked for the operation: the
    innermost calling frame in the package, whatever the depth of the counting code above it;
    backend.py's helpers (to_numpy, ...) are charged to their caller."""
    frame = sys._getframe(1)
    while frame and (not frame.f_code.co_filename.startswith(PACKAGE) or frame.f_code.co_filename == BACKEND):
        frame = frame.f_back
    if frame is None:
        return "?"
    where = frame.f_code.co_filename[len(PACKAGE):]
    return f"{where}:{frame.f_code.co_name}" if state["by_function"] else where


def _count():
    if state["counting"]:
        counts[_source()] += 1


@contextlib.contextmanager
def uncounted():
    saved, state["counting"] = state["counting"], False
    try:
        yield
    finally:
        state["counting"] = saved


def instrument():
    """Count launches on the strict stand-in: new arrays, in-place operators, item assignment.
    Returns a function that takes the counting out again."""
    wrap, setitem = strict_xp._wrap, strict_xp.StrictArray.__setitem__

    def counted_wrap(value):
        if (isinstance(value, numpy.ndarray) and value.base is None and value.size) or isinstance(value, numpy.generic):
            _count()                                 # a new array, or a full reduction's 0-d result
        return wrap(value)

    def counted_setitem(self, key, value):
        _count()
        return setitem(self, key, value)

    def counted_inplace(inplace):
        def counted(self, other):
            _count()
            return inplace(self, other)
        return counted
    patches = [(strict_xp, "_wrap", counted_wrap), (strict_xp.StrictArray, "__setitem__", counted_setitem)]
    patches += [(strict_xp.StrictArray, f"__i{name}__", counted_inplace(getattr(strict_xp.StrictArray, f"__i{name}__")))
                for name in ("add", "sub", "mul", "truediv")]
    return patch(patches)


def _one_launch(name, array_code):
    """A kernel entry point: the array code, uncounted, and one launch."""
    def entry(*args):
        counts[f"{name} (CUDA kernel)"] += state["counting"]
        with uncounted(), backend.use_fused_kernels(False):
            return array_code(*args)
    return entry


def _im2col(x, kh, kw, sh, sw, ph, pw, oh, ow, pad_value):
    return im2col.im2col(x, kh, kw, sh, sw, ph, pw, pad_value)


def _maxpool_forward(x, kernel, stride, padding, oh, ow):
    layer = MaxPool2D(kernel, stride, padding)
    return layer.forward(x), layer.argmax


def _maxpool_backward(gy, argmax, x_shape, kernel, stride, padding):
    layer = MaxPool2D(kernel, stride, padding)
    layer.argmax, layer.x_shape = argmax, x_shape
    return layer.backward(gy)


def _relu(x):
    layer = ReLU()
    return layer.forward(x), layer.mask


def _sigmoid(x):
    return Sigmoid().forward(x)


def _sigmoid_grad(gy, y):
    layer = Sigmoid()
    layer.y = y
    return layer.backward(gy)


def _sgd_update(g, lam, lr, mu, nesterov, v, w):
    """The SGD kernel's arithmetic on the strict arrays, in place (as the kernel)."""
    gd = g + g.dtype.type(lam) * w if lam else g
    v *= v.dtype.type(mu)
    v -= v.dtype.type(lr) * gd
    w += (v.dtype.type(mu) * v - v.dtype.type(lr) * gd) if nesterov else v


@contextlib.contextmanager
def with_kernels():
    """minidnn's CUDA kernels on the strict stand-in: each entry point one counted launch."""
    on = backend.fused_kernels                      # the switch, whatever the module (strict here)
    patches = [(backend, "fused_kernels", lambda module=None: on()),
               (im2col_kernels, "im2col", _one_launch("im2col", _im2col)),
               (im2col_kernels, "col2im", _one_launch("col2im", im2col.col2im)),
               (pooling_kernels, "maxpool_forward", _one_launch("max pooling forward", _maxpool_forward)),
               (pooling_kernels, "maxpool_backward", _one_launch("max pooling backward", _maxpool_backward)),
               (activation_kernels, "relu", _one_launch("ReLU forward", _relu)),
               (activation_kernels, "sigmoid", _one_launch("sigmoid forward", _sigmoid)),
               (activation_kernels, "sigmoid_grad", _one_launch("sigmoid backward", _sigmoid_grad)),
               (loss_kernels, "softmax_cross_entropy",
                _one_launch("softmax cross-entropy", losses.softmax_cross_entropy_rows)),
               (kernels, "sgd_momentum_kernel", lambda: _one_launch("SGD update", _sgd_update))]
    with patched(patches):
        yield


def patch(patches):
    """Set each (owner, name, value); returns a function that puts the old values back."""
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    for owner, name, value in patches:
        setattr(owner, name, value)

    def undo():
        for owner, name, value in saved:
            setattr(owner, name, value)
    return undo


@contextlib.contextmanager
def patched(patches):
    """``patch`` for the duration of a with block."""
    undo = patch(patches)
    try:
        yield
    finally:
        undo()


def count_step(name, fused):
    """Launches in one training step of model ``name`` (the second step: slots exist)."""
    with backend.use_backend("strict"), (with_kernels() if fused else contextlib.nullcontext()):
        xp = backend.xp()
        net = build_model(name, rng=0)
        rng = numpy.random.default_rng(0)
        x = xp.asarray(rng.uniform(size=(BATCH,) + net.input_shape).astype(numpy.float32))
        y = xp.asarray(rng.integers(0, 10, BATCH))
        optimizer = SGD(net.named_params(), lr=0.01, momentum=0.9, weight_decay=1e-3)
        loss = SoftmaxCrossEntropy()
        for step in range(2):
            counts.clear()
            state["counting"] = step == 1
            optimizer.zero_grad()
            net.loss_and_backward(x, y, loss, train=True, need_input_grad=False)
            optimizer.step()
        state["counting"] = False
        return dict(counts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="N100-100-10,N200-200-10,AE400-10,ConvNet")
    args = parser.parse_args()
    instrument()
    print(f"kernel launches per training step on CuPy (batch {BATCH}), counted on the strict stand-in")
    for name in args.models.split(","):
        array_code, fused = count_step(name, False), count_step(name, True)
        print(f"\n{name}: array code {sum(array_code.values())}, with minidnn's CUDA kernels {sum(fused.values())}")
        for where in sorted(set(array_code) | set(fused)):
            print(f"  {where:<40}{array_code.get(where, 0):>6}{fused.get(where, 0):>6}")


if __name__ == "__main__":
    main()
