"""2-D max pooling: each window's maximum, the gradient routed to its (first) argmax."""
from .. import backend
from .base import Layer
from .im2col import output_size, pair, window


class MaxPool2D(Layer):
    """y[n, c, oh, ow] = max_{i,j} x_pad[n, c, s_h·oh + i, s_w·ow + j]   (padding = −∞).

    x: (N, C, H, W) -> y: (N, C, OH, OW). Like im2col, it loops over the KH·KW kernel
    offsets only, each a strided view of every window at once. Backward sends gy to the
    (first) argmax of each window, gx[window's argmax] += gy, so overlapping windows add up.
    On CuPy each direction is one CUDA kernel with the same results (``pooling_kernels.py``).
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride if stride is not None else kernel_size, "stride")
        self.padding = pair(padding, "padding")
        if any(p >= k for p, k in zip(self.padding, self.kernel_size)):
            # a window of padding only would output −∞ and route its gradient nowhere
            raise ValueError(f"MaxPool2D: padding {self.padding} must be smaller than the kernel {self.kernel_size}")

    def forward(self, x, train=False):
        if x.ndim != 4:
            raise ValueError(f"{self!r}: expected input (N, C, H, W), got {tuple(x.shape)}")
        xp = backend.get_array_module(x)
        n, c, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        oh, ow = output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)
        self.x_shape = (n, c, h, w)
        if backend.fused_kernels(xp) and x.dtype.char in "fd":      # CuPy: one kernel, the same values
            from . import pooling_kernels
            y, self.argmax = pooling_kernels.maxpool_forward(x, self.kernel_size, self.stride, self.padding, oh, ow)
            return y
        if ph or pw:
            x = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), mode="constant", constant_values=-xp.inf)
        # running maximum over the KH·KW kernel offsets; argmax keeps the first offset on ties
        y, self.argmax = None, None
        for k, (i, j) in enumerate(self._offsets()):
            view = x[:, :, window(i, sh, oh), window(j, sw, ow)]
            if y is None:
                y, self.argmax = view.copy(), xp.zeros(view.shape, dtype="int16")
                continue
            greater = view > y
            xp.maximum(y, view, out=y)
            self.argmax += (k - self.argmax) * greater      # = k where this offset is the new maximum
        return y

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        if backend.fused_kernels(xp) and gy.dtype.char in "fd":     # CuPy: one gather-sum kernel, the same sums
            from . import pooling_kernels
            return pooling_kernels.maxpool_backward(gy, self.argmax, self.x_shape, self.kernel_size, self.stride,
                                                    self.padding)
        n, c, h, w = self.x_shape
        (sh, sw), (ph, pw) = self.stride, self.padding
        oh, ow = gy.shape[-2:]
        gx = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=gy.dtype)
        for k, (i, j) in enumerate(self._offsets()):     # gy goes where each window's maximum was
            gx[:, :, window(i, sh, oh), window(j, sw, ow)] += gy * (self.argmax == k)
        return gx[:, :, ph:ph + h, pw:pw + w]

    def _offsets(self):
        kh, kw = self.kernel_size
        return [(i, j) for i in range(kh) for j in range(kw)]

    def config(self):
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "padding": list(self.padding)}

    def output_shape(self, input_shape):
        c, h, w = input_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (c, output_size(h, kh, sh, ph), output_size(w, kw, sw, pw))
