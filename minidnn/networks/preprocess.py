"""Fixed preprocessing in front of a classifier (the paper's Section 3): still one network."""
from ..layers import GaussianBlur, Reshape
from .sequential import Sequential, stack


def blurred(net, size, sigma=None, image_shape=(1, 28, 28)):
    """``net`` with a fixed GaussianBlur(size, σ) in front (layers shared); flat or image inputs."""
    flat = len(net.input_shape) == 1
    shape = tuple(image_shape) if flat else tuple(net.input_shape)
    front = Sequential(([Reshape(shape)] if flat else []) + [GaussianBlur(size, sigma)], tuple(net.input_shape),
                       name=f"blur{size}")
    return stack(front, net, name=f"blur{size}+{net.describe()}")
