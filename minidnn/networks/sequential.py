"""A network is a list of layers applied in turn; backward walks them in reverse."""
import contextlib
import math

from .. import backend
from ..layers import Reshape, layer_from_spec
from ..layers.activations import softmax
from ..losses import SoftmaxCrossEntropy


class Sequential:
    """y = f_L(... f_2(f_1(x))).

    ``input_shape`` is one example's shape, e.g. (784,) or (1, 28, 28); it fixes the
    spec that checkpoints compare. Classifiers end in logits (no Softmax layer): use
    ``predict_proba`` for probabilities and ``SoftmaxCrossEntropy`` to train.
    """

    def __init__(self, layers, input_shape, name=None):
        self.layers = list(layers)
        self.input_shape = tuple(int(d) for d in input_shape)
        self.name = name
        self.output_shape_ = self._infer_shapes()

    def _infer_shapes(self):
        shape = self.input_shape
        for i, layer in enumerate(self.layers):
            try:
                shape = layer.output_shape(shape)
            except ValueError as exc:
                raise ValueError(f"layer {i} ({layer!r}) does not accept input of shape {shape}: {exc}") from exc
        return shape

    # ---- forward and backward ------------------------------------------------------------
    def forward(self, x, train=False, end=None):
        """Output of layers[:end] (all by default) for x: (N, *input_shape)."""
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"{self.describe()}: expected input (N, {', '.join(map(str, self.input_shape))}), "
                             f"got {tuple(x.shape)}")
        for layer in self.layers[:end]:
            x = layer.forward(x, train=train)
        return x

    __call__ = forward

    def backward(self, gy, stop=0, injections=None):
        """Back-propagate gy = ∂L/∂y through layers[stop:], returning ∂L/∂(their input).

        injections: {layer index: array} extra gradients w.r.t. that layer's *output*,
        added as the sweep passes it (penalties on hidden units use this, so one
        backward pass serves the loss and every penalty).
        """
        injections = injections or {}
        for i in range(len(self.layers) - 1, stop - 1, -1):
            if i in injections:
                gy = gy + injections[i]
            gy = self.layers[i].backward(gy)
        return gy

    def fused_end(self, loss):
        """Index where the loss takes over: the last layer is skipped if the loss fuses with it."""
        if self.layers and loss.fuses_with == type(self.layers[-1]).__name__:
            return len(self.layers) - 1
        return len(self.layers)

    def loss_and_backward(self, x, target, loss, train=True, penalties=(), need_input_grad=True):
        """Forward, loss, backward; accumulates parameter gradients.

        penalties: callables ``penalty(net) -> (value, injections)`` evaluated on this
        forward pass's caches (e.g. the contractive penalty of Eq. 6); their values are
        added to the loss and their gradients ride along the same backward sweep.
        need_input_grad=False (training) stops the sweep at the first layer with
        parameters, which then skips computing ∂loss/∂x.
        Returns (loss value including penalties, the output the loss saw (logits if
        fused), ∂loss/∂x or None).
        """
        end = self.fused_end(loss)
        h = self.forward(x, train=train, end=end)
        value = loss.forward(h, target)
        g = loss.backward()
        injections = {}
        for penalty in penalties:
            v, inj = penalty(self)
            value = value + v
            for i, gi in inj.items():
                injections[i] = injections[i] + gi if i in injections else gi
        stop = 0 if need_input_grad else next((i for i, l in enumerate(self.layers) if l.params), 0)
        first, saved = self.layers[stop], self.layers[stop].compute_input_grad
        first.compute_input_grad = saved and need_input_grad
        try:
            for i in range(end - 1, stop - 1, -1):
                if i in injections:
                    g = g + injections[i]
                g = self.layers[i].backward(g)
        finally:
            first.compute_input_grad = saved
        return value, h, g

    @contextlib.contextmanager
    def input_gradient_only(self):
        """Within the block, backward computes ∂L/∂x only (parameter gradients skipped)."""
        saved = [layer.compute_param_grads for layer in self.layers]
        for layer in self.layers:
            layer.compute_param_grads = False
        try:
            yield self
        finally:
            for layer, flag in zip(self.layers, saved):
                layer.compute_param_grads = flag

    def input_gradient(self, x, labels, loss=None):
        """Per-example ∂L(x_n, l_n)/∂x_n for any labels l (cross-entropy on the logits).

        Returns (loss per batch summed, logits, gx) with gx shaped like x. Parameters'
        gradients are left untouched. Noise layers run in test mode.
        """
        loss = loss or SoftmaxCrossEntropy(reduction="sum")
        with self.input_gradient_only():
            return self.loss_and_backward(x, labels, loss, train=False)

    # ---- prediction --------------------------------------------------------------------------
    def predict_logits(self, x, batch_size=1000):
        xp = backend.get_array_module(x)
        outs = [self.forward(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)]
        return xp.concatenate(outs) if len(outs) > 1 else outs[0]

    def predict_proba(self, x, batch_size=1000):
        """softmax of the logits: (N, K)."""
        return softmax(self.predict_logits(x, batch_size))

    def predict(self, x, batch_size=1000):
        """The most probable class: (N,) integers."""
        return self.predict_logits(x, batch_size).argmax(axis=1)

    # ---- parameters, spec, conversion -------------------------------------------------------------
    def named_params(self):
        """{'<layer index>.<name>': Parameter} in layer order."""
        return {f"{i}.{k}": p for i, layer in enumerate(self.layers) for k, p in layer.params.items()}

    def zero_grad(self):
        for p in self.named_params().values():
            p.zero_grad()

    def num_params(self):
        return sum(int(p.data.size) for p in self.named_params().values())

    def spec(self):
        return {"name": self.name, "input_shape": list(self.input_shape),
                "layers": [layer.spec() for layer in self.layers]}

    @classmethod
    def from_spec(cls, spec):
        return cls([layer_from_spec(s) for s in spec["layers"]], spec["input_shape"], spec.get("name"))

    def layer_states(self):
        """Non-parameter state (noise generators) by layer index, for checkpoints."""
        return {str(i): layer.state() for i, layer in enumerate(self.layers) if hasattr(layer, "state")}

    def load_layer_states(self, states):
        for i, state in states.items():
            self.layers[int(i)].load_state(state)

    def astype(self, dtype=None, module=None):
        """Convert every parameter to ``dtype`` and/or another array module; returns self."""
        for layer in self.layers:
            layer.astype(dtype, module)
        return self

    def describe(self):
        return self.name or "Sequential"

    def __repr__(self):
        body = "\n".join(f"  ({i}) {layer!r}" for i, layer in enumerate(self.layers))
        return f"{self.describe()}(input_shape={self.input_shape}) [\n{body}\n]"


def stack(first, second, name=None):
    """One network computing second(first(x)); the layers (and so the weights) are shared.

    E.g. an autoencoder followed by a classifier: the whole stack stays differentiable,
    so attacks and gradient checks see it end to end.
    """
    out, into = tuple(first.output_shape_), tuple(second.input_shape)
    glue = []
    if out != into:
        if math.prod(out) != math.prod(into):
            raise ValueError(f"cannot stack {first.describe()} (output {out}) in front of "
                             f"{second.describe()} (input {into})")
        glue = [Reshape(into)]      # e.g. a flat 784 autoencoder output into a (1, 28, 28) ConvNet
    return Sequential(first.layers + glue + second.layers, first.input_shape,
                      name or f"{first.describe()}+{second.describe()}")
