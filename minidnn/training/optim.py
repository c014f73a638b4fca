"""Optimizers with L2 weight decay, written once for every backend.

Weight decay convention, used everywhere in minidnn: the objective is
    J(θ) = loss(θ) + (λ/2) Σ_{W decayed} ‖W‖²,   so   ∇J = ∇loss + λ W,
where loss is the batch *mean* unless the trainer is told to sum. Only parameters
with ``decay=True`` are decayed (dense weights; not biases, not conv kernels).
``weight_decay`` may also be a dict {parameter name: λ} for per-group values.
"""
from .. import backend


def l2_penalty(params, weight_decay):
    """(λ/2) Σ ‖W‖² over the decayed parameters (a float)."""
    total = 0.0
    for name, p in params.items():
        lam = _decay_for(name, p, weight_decay)
        if lam:
            total += 0.5 * lam * float((p.data * p.data).sum())
    return total


def _decay_for(name, p, weight_decay):
    if isinstance(weight_decay, dict):
        return float(weight_decay.get(name, 0.0))
    return float(weight_decay) if p.decay else 0.0


def _fusable(p):
    """A parameter the CUDA update kernel takes: CuPy arrays, data and gradient both float32 or both float64
    (float16 arithmetic in CUDA C++ goes through float, which would not round as NumPy does)."""
    xp = backend.get_array_module(p.data)
    return (backend.fused_kernels(xp) and p.grad is not None and p.grad.dtype == p.data.dtype
            and p.data.dtype.char in "fd")


class Optimizer:
    """Holds named parameters and per-parameter state; ``step()`` applies the gradients."""

    def __init__(self, params, lr, weight_decay=0.0):
        if lr <= 0:
            raise ValueError(f"learning rate must be > 0, got {lr}")
        self.params, self.lr, self.weight_decay = dict(params), float(lr), weight_decay
        self.state = {}           # (parameter name, slot) -> array
        self.steps = 0

    def gradient(self, name, p):
        """∇J for one parameter: its accumulated gradient plus λ W."""
        if p.grad is None:
            raise RuntimeError(f"parameter {name!r} has no gradient: was backward run?")
        lam = _decay_for(name, p, self.weight_decay)
        return p.grad + p.data.dtype.type(lam) * p.data if lam else p.grad

    def slot(self, name, key, like):
        if (name, key) not in self.state:
            self.state[(name, key)] = backend.get_array_module(like).zeros_like(like)
        return self.state[(name, key)]

    def step(self):
        self.steps += 1
        for name, p in self.params.items():
            self.update(name, p, self.gradient(name, p))

    def zero_grad(self):
        for p in self.params.values():
            p.zero_grad()

    # state for checkpoints: arrays keyed "name/slot", scalars in a small dict
    def state_arrays(self):
        return {f"{name}/{key}": arr for (name, key), arr in self.state.items()}

    def load_state_arrays(self, arrays, scalars):
        self.state = {}
        for k, arr in arrays.items():
            name, key = k.rsplit("/", 1)
            if name not in self.params:
                raise ValueError(f"optimizer state names unknown parameter {name!r}")
            like = self.params[name].data
            # a copy: steps update slots in place, which must not write into the caller's arrays
            self.state[(name, key)] = backend.get_array_module(like).asarray(arr, dtype=like.dtype).copy()
        self.steps, self.lr = int(scalars["steps"]), float(scalars["lr"])

    def scalars(self):
        return {"steps": self.steps, "lr": self.lr}


class SGD(Optimizer):
    """v ← μ v − η g;  θ ← θ + v   (Nesterov: θ ← θ + μ v − η g).  μ = 0: plain SGD.

    On CuPy, with momentum, each parameter's update (decay included) is one CUDA kernel
    (``kernels.py``, the same arithmetic; ``backend.use_fused_kernels(False)``: the array version)."""

    def __init__(self, params, lr=0.1, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        if nesterov and momentum <= 0:
            raise ValueError("Nesterov momentum needs momentum > 0")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def step(self):
        if not (self.momentum and all(_fusable(p) for p in self.params.values())):
            return super().step()
        from .kernels import sgd_momentum_kernel
        self.steps += 1
        for name, p in self.params.items():
            sgd_momentum_kernel()(p.grad, _decay_for(name, p, self.weight_decay), self.lr, self.momentum,
                                  self.nesterov, self.slot(name, "velocity", p.data), p.data)

    def update(self, name, p, g):
        lr = p.data.dtype.type(self.lr)
        if self.momentum == 0:
            p.data -= lr * g
            return
        mu = p.data.dtype.type(self.momentum)
        v = self.slot(name, "velocity", p.data)
        v *= mu
        v -= lr * g
        p.data += (mu * v - lr * g) if self.nesterov else v

    def config(self):
        return {"type": "sgd", "lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  θ ← θ − η m̂ / (√v̂ + ε)  (Kingma & Ba 2015)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        self.beta1, self.beta2, self.eps = float(betas[0]), float(betas[1]), float(eps)

    def update(self, name, p, g):
        xp = backend.get_array_module(p.data)
        t = p.data.dtype.type
        m, v = self.slot(name, "m", p.data), self.slot(name, "v", p.data)
        m *= t(self.beta1)
        m += t(1 - self.beta1) * g
        v *= t(self.beta2)
        v += t(1 - self.beta2) * g * g
        bias1, bias2 = 1 - self.beta1 ** self.steps, 1 - self.beta2 ** self.steps
        p.data -= t(self.lr / bias1) * m / (xp.sqrt(v / t(bias2)) + t(self.eps))

    def config(self):
        return {"type": "adam", "lr": self.lr, "betas": [self.beta1, self.beta2], "eps": self.eps}


def make_optimizer(name, params, **kwargs):
    """'sgd', 'momentum', 'nesterov' or 'adam' by name (the CLI's choice)."""
    name = name.lower()
    if name == "adam":
        kwargs.pop("momentum", None)
        return Adam(params, **kwargs)
    if name == "sgd":
        return SGD(params, **kwargs)
    if name == "momentum":
        return SGD(params, **{"momentum": 0.9, **kwargs})
    if name == "nesterov":
        return SGD(params, **{"momentum": 0.9, **kwargs, "nesterov": True})
    raise ValueError(f"unknown optimizer {name!r}; choose sgd, momentum, nesterov or adam")
