"""Fixtures for the attack tests: MNIST, a small trained MLP, the strict stand-in.

(One OpenBLAS thread for the whole run is pinned in tests/conftest.py.)
"""
import os
import pathlib

import numpy
import pytest

from minidnn import backend

REPO = pathlib.Path(__file__).resolve().parents[2]


# ---- MNIST and a small trained MLP -------------------------------------------------------------
def mnist_directory():
    """$MINIDNN_DATA, else the shared data folder beside the repository (or /work/shared); None if absent."""
    names = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
             "t10k-labels-idx1-ubyte.gz")
    for directory in (os.environ.get("MINIDNN_DATA"), REPO.parent / "shared" / "data" / "mnist",
                      "/work/shared/data/mnist"):
        if directory and all(os.path.isfile(os.path.join(directory, n)) for n in names):
            return str(directory)
    return None


@pytest.fixture(scope="package")
def mnist_dir_path():
    """The folder holding MNIST's files; the test is skipped when there is none."""
    directory = mnist_directory()
    if directory is None:
        pytest.skip("MNIST not found: set MINIDNN_DATA or put the files in ../shared/data/mnist")
    return directory


class TrainedMLP:
    """A 784-64-10 ReLU MLP trained for 3 epochs on 3,000 MNIST training images (about 9% error on
    held-out images), and 300 held-out training images to attack: x (300, 784) float32 in [0, 1],
    y (300,) labels, targets (300,) random wrong labels (seed 1)."""

    def __init__(self, net, x, y, targets):
        self.net, self.x, self.y, self.targets = net, x, y, targets


@pytest.fixture(scope="package")
def trained_mlp(mnist_dir_path):
    from minidnn.attacks import choose_targets
    from minidnn.data import MNISTNotFoundError, load_mnist
    from minidnn.networks import mlp
    from minidnn.training import Trainer, make_optimizer
    try:
        x, y = load_mnist("train", data_dir=mnist_dir_path, flat=True, download=False)
    except MNISTNotFoundError as exc:
        pytest.skip(f"MNIST not loadable: {exc}")
    order = numpy.random.default_rng(0).permutation(len(x))
    train, held_out = order[:3000], order[3000:3300]
    with backend.use_backend("numpy"), backend.use_dtype("float32"):
        net = mlp([64], rng=0, name="MLP-64")
        optimizer = make_optimizer("momentum", net.named_params(), lr=0.05)
        Trainer(net, optimizer, batch_size=64, seed=0, progress=False).fit(x[train], y[train], 3)
    targets = choose_targets(net, x[held_out], y[held_out], "random", rng=1)
    return TrainedMLP(net, x[held_out], y[held_out], targets)


# ---- the strict CuPy stand-in ------------------------------------------------------------------
@pytest.fixture(scope="package")
def strict():
    """The strict CuPy stand-in (tests/support/strict_xp.py), registered with the backend as "strict"."""
    from support import strict_xp
    return strict_xp.strict
