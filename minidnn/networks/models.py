"""The paper's four MNIST models (Table 1), built by name.

| name         | layers                                                             |
|--------------|--------------------------------------------------------------------|
| N100-100-10  | 784 → Dense 100 → ReLU → Dense 100 → ReLU → Dense 10 (logits)      |
| N200-200-10  | 784 → Dense 200 → ReLU → Dense 200 → ReLU → Dense 10               |
| AE400-10     | 784 → Dense 400 → Sigmoid → Dense 10; the 784-400 encoder is       |
|              | pretrained as a 784-400-784 sigmoid autoencoder (``autoencoder``)  |
| ConvNet      | 1×28×28 → Conv 5×5×C1 → ReLU → MaxPool 2 → Conv 5×5×C2 → ReLU →    |
|              | MaxPool 2 → Flatten → Dense F → ReLU → Dense 10                    |

ConvNet sizes (C1, C2, F) = (20, 40, 150), "valid" convolutions (no padding):
28 → 24 → 12 → 8 → 4, so 40·4·4 = 640 features reach the dense layer. This is a
LeNet-5-sized network (about 1.7 M multiply-adds per example, forward): later
issues train it several times and attack it tens of thousands of times on two CPU
cores, and a network twice as wide costs about three times as much per attack for a
few hundredths of a point of test error. Trained with RECIPES["ConvNet"] (15 epochs) it
reaches 0.76% validation and 0.70% test error (docs/baselines.md); one training epoch on
55,000 images takes about 30 s on one free CPU core (NumPy, float32,
OPENBLAS_NUM_THREADS=1). The paper decays every layer but the convolutions; here too
(conv kernels have ``decay=False``).
"""
from ..layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sigmoid
from ..layers.base import init_rng
from .sequential import Sequential

CONVNET_SIZES = (20, 40, 150)


def mlp(hidden, activation="relu", n_in=784, n_out=10, rng=None, name=None):
    """784 → hidden… → n_out logits, with ReLU (He init) or sigmoid (Glorot init) units."""
    rng = init_rng(rng)
    act = {"relu": ReLU, "sigmoid": Sigmoid}[activation]
    init = "he" if activation == "relu" else "glorot"
    layers, width = [], n_in
    for h in hidden:
        layers += [Dense(width, h, init=init, rng=rng), act()]
        width = h
    layers.append(Dense(width, n_out, init="glorot", rng=rng))
    return Sequential(layers, (n_in,), name)


def autoencoder(n_in=784, n_hidden=400, rng=None, name="AE400"):
    """784 → Dense 400 → Sigmoid → Dense 784 → Sigmoid: trained with BinaryCrossEntropy."""
    rng = init_rng(rng)
    return Sequential([Dense(n_in, n_hidden, rng=rng), Sigmoid(),
                       Dense(n_hidden, n_in, rng=rng), Sigmoid()], (n_in,), name)


def recovery_autoencoder(n_in=784, sizes=(256, 128, 256), rng=None, name="AE784-256-128-256-784"):
    """The paper's Section 3.2/3.3 autoencoder, 784-256-128-256-784: ReLU hidden units (He init)
    and a sigmoid output, trained with BinaryCrossEntropy on [0, 1] pixel targets. The paper gives
    only the sizes; these activations are our choice."""
    rng = init_rng(rng)
    layers, width = [], n_in
    for h in sizes:
        layers += [Dense(width, h, init="he", rng=rng), ReLU()]
        width = h
    layers += [Dense(width, n_in, rng=rng), Sigmoid()]
    return Sequential(layers, (n_in,), name)


def convnet(sizes=CONVNET_SIZES, rng=None, name="ConvNet"):
    rng = init_rng(rng)
    c1, c2, f = sizes
    return Sequential([
        Conv2D(1, c1, 5, rng=rng), ReLU(), MaxPool2D(2),
        Conv2D(c1, c2, 5, rng=rng), ReLU(), MaxPool2D(2),
        Flatten(), Dense(c2 * 16, f, init="he", rng=rng), ReLU(),
        Dense(f, 10, rng=rng)], (1, 28, 28), name)


MODELS = {
    "N100-100-10": lambda rng=None: mlp([100, 100], "relu", rng=rng, name="N100-100-10"),
    "N200-200-10": lambda rng=None: mlp([200, 200], "relu", rng=rng, name="N200-200-10"),
    "AE400-10": lambda rng=None: mlp([400], "sigmoid", rng=rng, name="AE400-10"),
    "ConvNet": lambda rng=None: convnet(rng=rng),
}


def build_model(name, rng=None):
    """One of the paper's models by its Table 1 name, freshly initialised from ``rng`` (a seed)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name](rng=rng)


def input_layout(net):
    """'flat' for (784,) inputs, 'image' for (1, 28, 28)."""
    return "flat" if len(net.input_shape) == 1 else "image"
