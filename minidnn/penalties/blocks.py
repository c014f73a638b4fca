"""The blocks h_j = f_j(h_{j−1}) of Eq. 6: one affine or convolution map with its activation.

A block is (index of the Dense/Conv2D layer, the activation that follows it). A Dense
that ends the network (logits) or is followed by a Softmax layer is the softmax output
block. Max pooling and Flatten/Reshape are not blocks: their Jacobians are selection
and permutation matrices whose squared Frobenius norm is a constant (the number of
outputs), independent of every parameter and input, so they add nothing to a gradient.
"""
from dataclasses import dataclass

from ..layers import Conv2D, Dense, ReLU, Sigmoid, Softmax, Tanh

ACTIVATIONS = {ReLU: "relu", Sigmoid: "sigmoid", Tanh: "tanh", Softmax: "softmax"}


@dataclass
class Block:
    index: int          # position of the Dense / Conv2D layer in net.layers
    layer: object       # that layer
    activation: str     # 'relu', 'sigmoid', 'tanh', 'softmax' or 'linear'
    act_layer: object   # the activation layer (None for a softmax output or a linear map)

    def describe(self):
        kind = type(self.layer).__name__
        return f"{self.index}:{kind}+{self.activation}"


def find_blocks(net):
    """Blocks of a Sequential network, in order."""
    blocks, layers = [], net.layers
    for i, layer in enumerate(layers):
        if not isinstance(layer, (Dense, Conv2D)):
            continue
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        kind = ACTIVATIONS.get(type(nxt))
        if kind is None:
            # logits at the end of a classifier: the softmax output layer of the paper
            kind = "softmax" if (nxt is None and isinstance(layer, Dense)) else "linear"
            nxt = None
        elif kind == "softmax":
            nxt = None      # read the probabilities from the logits, not the layer's cache
        blocks.append(Block(i, layer, kind, nxt))
    return blocks
