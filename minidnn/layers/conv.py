"""2-D convolution (cross-correlation, as in every deep-learning library) via im2col."""
import numpy

from .base import Layer, init_rng, new_param
from .im2col import col2im, im2col, output_size, pair


class Conv2D(Layer):
    """y[n, f, oh, ow] = b[f] + Σ_{c,i,j} W[f, c, i, j] · x_pad[n, c, s_h·oh + i, s_w·ow + j].

    x: (N, C, H, W), W: (F, C, KH, KW), b: (F,), y: (N, F, OH, OW).
    Kernels are not weight-decayed by default (the paper: no decay on conv layers).
    He initialisation: W ~ N(0, 2 / (C·KH·KW)).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 rng=None, decay=False):
        super().__init__()
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride = pair(kernel_size, "kernel_size"), pair(stride, "stride")
        self.padding, self.decay = pair(padding, "padding"), decay
        kh, kw = self.kernel_size
        fan_in = in_channels * kh * kw
        W = init_rng(rng).normal(0.0, numpy.sqrt(2.0 / fan_in), (out_channels, in_channels, kh, kw))
        self.params = {"W": new_param(W, decay=decay), "b": new_param(numpy.zeros(out_channels), decay=False)}

    def forward(self, x, train=False):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{self!r}: expected input (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        self.x_shape = x.shape
        self.col = im2col(x, kh, kw, sh, sw, ph, pw)                # (C, KH, KW, N, OH, OW)
        c, _, _, n, oh, ow = self.col.shape
        W, b = self.params["W"].data, self.params["b"].data
        # y = W · col as one matrix product: (F, C·KH·KW) @ (C·KH·KW, N·OH·OW), plus b per filter
        y = W.reshape(W.shape[0], -1) @ self.col.reshape(c * kh * kw, n * oh * ow)
        y += b[:, None]
        return y.reshape(-1, n, oh, ow).transpose(1, 0, 2, 3)       # (N, F, OH, OW), a view

    def backward(self, gy):
        W = self.params["W"].data
        f = W.shape[0]
        gy2 = gy.transpose(1, 0, 2, 3).reshape(f, -1)               # (F, N·OH·OW)
        col2 = self.col.reshape(-1, gy2.shape[1])                   # (C·KH·KW, N·OH·OW)
        if self.compute_param_grads:
            # ∂L/∂W = gy · colᵀ;  ∂L/∂b[f] = Σ_{n,oh,ow} gy[n, f, oh, ow]
            self.params["W"].accumulate((gy2 @ col2.T).reshape(W.shape))
            self.params["b"].accumulate(gy2.sum(axis=1))
        if not self.compute_input_grad:
            return None
        # ∂L/∂col = Wᵀ · gy, then scattered back onto the image (col2im, im2col's adjoint)
        gcol = (W.reshape(f, -1).T @ gy2).reshape(self.col.shape)
        (sh, sw), (ph, pw) = self.stride, self.padding
        return col2im(gcol, self.x_shape[2], self.x_shape[3], sh, sw, ph, pw)

    def config(self):
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "padding": list(self.padding), "decay": self.decay}

    def output_shape(self, input_shape):
        if len(input_shape) != 3 or input_shape[0] != self.in_channels:
            raise ValueError(f"{self!r} expects ({self.in_channels}, H, W) inputs, got {tuple(input_shape)}")
        c, h, w = input_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (self.out_channels, output_size(h, kh, sh, ph), output_size(w, kw, sw, pw))
