"""A fixed Gaussian blur in front of a classifier (the paper's Table 2): an ordinary layer, so the
blurred network stays differentiable end to end."""
import numpy

from .. import backend
from .base import Layer


def default_sigma(size):
    """σ for a kernel of ``size`` taps when none is given: OpenCV's rule
    σ = 0.3·((size − 1)/2 − 1) + 0.8 (size 5 → 1.1, size 11 → 2.0). The paper names only the size."""
    return 0.3 * ((size - 1) / 2 - 1) + 0.8


def gaussian_kernel_1d(size, sigma):
    """g_i ∝ exp(−(i − r)² / 2σ²), i = 0..size−1, r = size // 2, normalised to Σ g = 1."""
    r = size // 2
    g = numpy.exp(-((numpy.arange(size) - r) ** 2) / (2.0 * sigma ** 2))
    return g / g.sum()


def blur_matrix(n, g):
    """The (n, n) matrix B with (B v)_i = Σ_k g_k v_{i+k−r}, zero outside 0..n−1 ("same" output,
    zero padding): the 1-D blur written as a banded Toeplitz matrix, borders exact."""
    r = len(g) // 2
    B = numpy.zeros((n, n))
    for k, gk in enumerate(g):
        B += gk * numpy.eye(n, k=k - r)
    return B


class GaussianBlur(Layer):
    """y = K ⋆ x per channel, K = g gᵀ the normalised 2-D Gaussian (separable), zero padding, same size.

    Separable, so for each image X (H, W):  Y = B_H X B_Wᵀ  with the 1-D blur matrices
    of ``blur_matrix``;  backward:  gX = B_Hᵀ gY B_W.  x: (N, C, H, W). No parameters: the
    kernel is fixed. size 1 is the identity.
    """

    def __init__(self, size, sigma=None):
        super().__init__()
        size = int(size)
        if size < 1 or size % 2 == 0:
            raise ValueError(f"GaussianBlur: size must be a positive odd number, got {size}")
        self.size = size
        self.sigma = float(default_sigma(size) if sigma is None else sigma)
        if self.sigma <= 0:
            raise ValueError(f"GaussianBlur: sigma must be > 0, got {self.sigma}")
        self.g = gaussian_kernel_1d(size, self.sigma)
        self._matrices = {}

    def _blur_matrices(self, x):
        H, W = x.shape[-2:]
        key = (H, W, x.dtype, backend.get_array_module(x).__name__)
        if key not in self._matrices:
            xp = backend.get_array_module(x)
            self._matrices[key] = (xp.asarray(blur_matrix(H, self.g), dtype=x.dtype),
                                   xp.asarray(blur_matrix(W, self.g), dtype=x.dtype))
        return self._matrices[key]

    def forward(self, x, train=False):
        if x.ndim != 4:
            raise ValueError(f"GaussianBlur expects (N, C, H, W) images, got shape {tuple(x.shape)}")
        B_H, B_W = self._blur_matrices(x)
        return B_H @ x @ B_W.T                      # Y = B_H X B_Wᵀ, batched over (N, C)

    def backward(self, gy):
        B_H, B_W = self._blur_matrices(gy)
        return B_H.T @ gy @ B_W                     # gX = B_Hᵀ gY B_W

    def kernel(self):
        """The 2-D kernel K = g gᵀ (sums to 1)."""
        return numpy.outer(self.g, self.g)

    def config(self):
        return {"size": self.size, "sigma": self.sigma}

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"GaussianBlur needs (C, H, W) inputs, got {tuple(input_shape)}")
        return tuple(input_shape)

    def __repr__(self):
        return f"GaussianBlur(size={self.size}, sigma={self.sigma:.3g})"

