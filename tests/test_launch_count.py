"""bench/launch_count.py counts a training step's kernel launches on the strict stand-in; here it also
proves, without a GPU, that with the kernels on every CUDA entry point is reached where the array
code would run, as often as the model has layers of its kind, and that the array code it replaces
no longer runs."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
import launch_count  # noqa: E402  (bench/ is part of the repository: an import error is a failure)


@pytest.fixture(scope="module", autouse=True)
def instrumented():
    undo = launch_count.instrument()
    yield
    undo()                                  # the strict stand-in as the other tests know it


def test_the_convnet_step_reaches_every_kernel():
    array_code, fused = launch_count.count_step("ConvNet", False), launch_count.count_step("ConvNet", True)
    assert fused["im2col (CUDA kernel)"] == 2          # two convolutions forward
    assert fused["col2im (CUDA kernel)"] == 1          # the second's ∂L/∂x (the first layer skips it)
    assert fused["max pooling forward (CUDA kernel)"] == fused["max pooling backward (CUDA kernel)"] == 2
    assert fused["softmax cross-entropy (CUDA kernel)"] == 1
    assert fused["ReLU forward (CUDA kernel)"] == 3    # after each conv layer and the hidden dense layer
    assert fused["SGD update (CUDA kernel)"] == 8      # four layers' weights and biases
    for replaced in ("layers/im2col.py", "layers/pooling.py", "training/optim.py"):
        assert array_code[replaced] > 0 and fused.get(replaced, 0) == 0, replaced
    assert fused["losses.py"] == 2                     # the batch's sum and its scaling
    assert sum(fused.values()) < sum(array_code.values()) / 4


def test_an_mlp_step_and_the_count_itself():
    array_code, fused = launch_count.count_step("N100-100-10", False), launch_count.count_step("N100-100-10", True)
    # forward x W (3) + b (3); backward xᵀ gy (3), Σ gy (3), gy Wᵀ (2: the first layer skips it)
    assert array_code["layers/dense.py"] == fused["layers/dense.py"] == 14
    assert fused["SGD update (CUDA kernel)"] == 6 and fused["softmax cross-entropy (CUDA kernel)"] == 1
    assert fused["ReLU forward (CUDA kernel)"] == 2 and fused["layers/activations.py"] == 2   # ReLU's backward
    assert sum(fused.values()) == 27 and sum(array_code.values()) == 66


def test_the_autoencoder_classifiers_sigmoid():
    fused = launch_count.count_step("AE400-10", True)
    assert fused["sigmoid forward (CUDA kernel)"] == fused["sigmoid backward (CUDA kernel)"] == 1
    assert fused.get("layers/activations.py", 0) == 0
