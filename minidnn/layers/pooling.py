"""2-D max pooling via im2col: each window's maximum, the gradient routed to its argmax."""
from .. import backend
from .base import Layer
from .im2col import col2im, im2col, output_size, pair


class MaxPool2D(Layer):
    """y[n, c, oh, ow] = max_{i,j} x_pad[n, c, s_h·oh + i, s_w·ow + j]   (padding = −∞).

    x: (N, C, H, W) -> y: (N, C, OH, OW). Backward sends gy to the (first) argmax of
    each window: gx = col2im(onehot(argmax) · gy), so overlapping windows add up.
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
        col = im2col(x.reshape(n * c, 1, h, w), kh, kw, sh, sw, ph, pw, pad_value=-xp.inf)
        oh, ow = col.shape[-2:]
        windows = col.reshape(n * c, kh * kw, oh, ow)
        self.argmax = windows.argmax(axis=1)                     # (N·C, OH, OW)
        self.x_shape = x.shape
        y = xp.take_along_axis(windows, self.argmax[:, None], axis=1)
        return y.reshape(n, c, oh, ow)

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        n, c, h, w = self.x_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        oh, ow = gy.shape[-2:]
        # onehot(argmax) · gy, built as (N·C, KH·KW, OH, OW)
        offsets = xp.arange(kh * kw).reshape(1, kh * kw, 1, 1)
        gwindows = (offsets == self.argmax[:, None]) * gy.reshape(n * c, 1, oh, ow)
        gcol = gwindows.reshape(n * c, 1, kh, kw, oh, ow)
        return col2im(gcol, h, w, sh, sw, ph, pw).reshape(n, c, h, w)

    def config(self):
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "padding": list(self.padding)}

    def output_shape(self, input_shape):
        c, h, w = input_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (c, output_size(h, kh, sh, ph), output_size(w, kw, sw, pw))
