"""Train a small MLP on MNIST from scratch, one step at a time (a few seconds on a 2-core CPU).

    MINIDNN_DATA=/path/to/mnist python examples/01_train_mlp.py

What happens in one training step, in the library's own words:
    logits = net.forward(x, train=True)          # each layer caches what its backward needs
    loss   = SoftmaxCrossEntropy()(logits, y)    # −mean log softmax(z)[y]
    gz     = loss.backward()                     # (softmax(z) − onehot(y)) / N
    net.backward(gz)                             # chain rule, layer by layer, filling p.grad
    optimizer.step()                             # θ ← θ − η (∇loss + λ W)
"""
import numpy as np

import minidnn
from minidnn.data import load_mnist, train_validation_split
from minidnn.layers import Dense, ReLU
from minidnn.losses import SoftmaxCrossEntropy
from minidnn.training import SGD, classification_error


def main(epochs=3, batch_size=64, seed=0):
    # 1. Data: float32 images in [0, 1], flattened to 784-vectors; a seeded validation split.
    x, y = load_mnist("train", flat=True)
    x_test, y_test = load_mnist("test", flat=True)
    train_idx, val_idx = train_validation_split(len(x), 5000, seed=seed)
    x_train, y_train, x_val, y_val = x[train_idx], y[train_idx], x[val_idx], y[val_idx]

    # 2. The network: 784 → 100 → ReLU → 100 → ReLU → 10 logits (the paper's N100-100-10).
    rng = np.random.default_rng(seed)        # every random draw comes from this seeded generator
    net = minidnn.Sequential([Dense(784, 100, init="he", rng=rng), ReLU(),
                              Dense(100, 100, init="he", rng=rng), ReLU(),
                              Dense(100, 10, rng=rng)], input_shape=(784,))
    print(net)
    loss = SoftmaxCrossEntropy()
    # L2 weight decay on dense weights (not biases): objective = loss + (λ/2)·Σ‖W‖²
    optimizer = SGD(net.named_params(), lr=0.05, momentum=0.9, weight_decay=1e-4)

    # 3. The loop, written out (minidnn.training.Trainer does the same plus logs and checkpoints).
    for epoch in range(epochs):
        order = rng.permutation(len(x_train))
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            optimizer.zero_grad()
            logits = net.forward(x_train[batch], train=True)
            value = loss.forward(logits, y_train[batch])
            net.backward(loss.backward())
            optimizer.step()
        print(f"epoch {epoch + 1}: last batch loss {float(value):.4f}, "
              f"validation error {100 * classification_error(net, x_val, y_val):.2f}%")

    # 4. The test set, used once at the end.
    print(f"test error {100 * classification_error(net, x_test, y_test):.2f}%")


if __name__ == "__main__":
    main()
