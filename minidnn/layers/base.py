"""What every layer shares: parameters with gradients, a config for rebuilding, train/eval."""
import numpy

from .. import backend


class Parameter:
    """A trainable array and the gradient that backward accumulates into it.

    ``decay`` says whether L2 weight decay applies (weights of dense layers: yes;
    biases and convolution kernels: no, as in the paper).
    """

    def __init__(self, data, decay=False):
        self.data = data
        self.grad = None
        self.decay = decay

    @property
    def shape(self):
        return self.data.shape

    def zero_grad(self):
        self.grad = None

    def accumulate(self, g):
        """grad += g (a parameter used twice gets both contributions)."""
        self.grad = g if self.grad is None else self.grad + g


class Layer:
    """Base class: ``forward(x, train)`` caches what ``backward(gy)`` needs.

    ``backward`` returns gx = ∂L/∂x given gy = ∂L/∂y and accumulates ∂L/∂θ into
    each parameter's ``grad``. Subclasses list their constructor arguments in
    ``config()`` so a network can be rebuilt from its spec (checkpoints).
    """

    # backward fills parameter gradients unless a caller only wants ∂L/∂x (attacks),
    # and returns ∂L/∂x unless nobody needs it (the first layer while training).
    compute_param_grads = True
    compute_input_grad = True

    def __init__(self):
        self.params = {}          # name -> Parameter

    def forward(self, x, train=False):
        raise NotImplementedError

    def backward(self, gy):
        raise NotImplementedError

    def __call__(self, x, train=False):
        return self.forward(x, train=train)

    def config(self):
        return {}

    def spec(self):
        return {"type": type(self).__name__, **self.config()}

    def output_shape(self, input_shape):
        """Shape of one example's output given one example's input shape (no batch axis)."""
        return tuple(input_shape)

    def astype(self, dtype=None, module=None):
        """Move parameters to another dtype and/or array module (numpy, cupy)."""
        for p in self.params.values():
            target = module or backend.get_array_module(p.data)
            data = p.data if target is backend.get_array_module(p.data) else target.asarray(backend.to_numpy(p.data))
            p.data = data.astype(dtype or data.dtype, copy=False)
            p.grad = None
        return self

    def __repr__(self):
        args = ", ".join(f"{k}={v}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


def init_rng(rng):
    """A NumPy Generator from a seed, a Generator, or None (seed 0: reproducible by default)."""
    if isinstance(rng, numpy.random.Generator):
        return rng
    return numpy.random.default_rng(0 if rng is None else rng)


def new_param(host_array, decay):
    """A Parameter on the current backend in the current float dtype."""
    return Parameter(backend.as_array(host_array, dtype=backend.float_dtype()), decay=decay)
