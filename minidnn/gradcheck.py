"""Gradient checking by central finite differences, in float64.

    ∂f/∂θ_i ≈ (f(θ + h e_i) − f(θ − h e_i)) / 2h

For a layer, f(x, θ) = Σ gy ⊙ layer(x) with a fixed random gy, so the analytic
side is exactly what ``backward(gy)`` returns (∂f/∂x) and accumulates (∂f/∂θ).
An entry passes when |analytic − numeric| ≤ rtol·max(|analytic|, |numeric|) + atol.
The step h = 1e-5 balances the difference quotient's two errors: rounding, about
1e-16·|f| / h (1e-10 for a summed loss of size 10, under atol = 1e-9, where h = 1e-6
failed correct gradients), and truncation, about h²·|f‴| / 6.
The report names the worst entry and both values, and ``assert_ok()`` raises with
that story instead of returning False.
"""
from dataclasses import dataclass, field

import numpy

from . import backend

EPS = 1e-5    # the finite-difference step h (see above)


@dataclass
class Entry:
    """The worst-matching entry of one checked array."""
    name: str
    index: tuple
    analytic: float
    numeric: float
    rel_error: float      # |a − n| / max(|a|, |n|), 0 where both vanish
    ok: bool
    max_abs_grad: float   # largest |analytic| over the array: an all-zero gradient proves nothing


@dataclass
class GradCheckReport:
    entries: list = field(default_factory=list)

    @property
    def ok(self):
        return all(e.ok for e in self.entries)

    @property
    def worst(self):
        return max(self.entries, key=lambda e: (not e.ok, e.rel_error))

    def table(self):
        rows = [f"{'array':<24}{'worst rel. err':>16}{'analytic':>14}{'numeric':>14}  index"]
        for e in self.entries:
            flag = "" if e.ok else "   <-- FAIL"
            rows.append(f"{e.name:<24}{e.rel_error:16.2e}{e.analytic:14.6g}{e.numeric:14.6g}  {e.index}{flag}")
        return "\n".join(rows)

    def assert_ok(self, nonzero=True):
        if not self.ok:
            w = self.worst
            raise AssertionError(f"gradient check failed at {w.name}{list(w.index)}: analytic {w.analytic!r}, "
                                 f"numeric {w.numeric!r} (rel. error {w.rel_error:.3e})\n{self.table()}")
        if nonzero:
            zero = [e.name for e in self.entries if e.max_abs_grad == 0]
            if zero:
                raise AssertionError(f"gradient is identically zero for {zero}: the check proves nothing\n{self.table()}")
        return self


def numerical_gradient(f, array, eps=EPS):
    """Central differences of the scalar f() w.r.t. every entry of ``array`` (perturbed in place, restored).

    Works on any backend's array (item assignment); returns a NumPy float64 array.
    """
    grad = numpy.zeros(array.shape, dtype=numpy.float64)
    for idx in numpy.ndindex(*array.shape):
        old = float(array[idx])
        array[idx] = old + eps
        f_plus = float(f())
        array[idx] = old - eps
        f_minus = float(f())
        array[idx] = old
        grad[idx] = (f_plus - f_minus) / (2 * eps)
    return grad


def compare(name, analytic, numeric, rtol=1e-6, atol=1e-9):
    """The worst entry of one array under |a − n| ≤ rtol·max(|a|,|n|) + atol."""
    a = numpy.asarray(backend.to_numpy(analytic), dtype=numpy.float64)
    n = numpy.asarray(numeric, dtype=numpy.float64)
    if a.shape != n.shape:
        raise ValueError(f"{name}: analytic gradient has shape {a.shape}, numeric {n.shape}")
    diff = numpy.abs(a - n)
    scale = numpy.maximum(numpy.abs(a), numpy.abs(n))
    excess = diff - (rtol * scale + atol)
    rel = numpy.divide(diff, scale, out=numpy.zeros_like(diff), where=scale > 0)
    i = int(numpy.argmax(excess)) if (excess > 0).any() else int(numpy.argmax(rel))
    idx = numpy.unravel_index(i, a.shape) if a.ndim else ()
    return Entry(name, tuple(int(k) for k in idx), float(a.flat[i]) if a.size else 0.0,
                 float(n.flat[i]) if n.size else 0.0, float(rel.flat[i]) if rel.size else 0.0,
                 bool((excess <= 0).all()), float(numpy.abs(a).max()) if a.size else 0.0)


def _require_float64(*arrays):
    for a in arrays:
        if a.dtype != numpy.float64:
            raise TypeError(f"gradient checks need float64 arrays, got {a.dtype} "
                            "(build the layer inside `with minidnn.use_dtype('float64'):`)")


def check_layer(layer, x, gy=None, train=False, eps=EPS, rtol=1e-6, atol=1e-9, seed=0, wrt_input=True):
    """Check ``layer.backward`` against finite differences for x and every parameter."""
    xp = backend.get_array_module(x)
    params = layer.params
    _require_float64(x, *(p.data for p in params.values()))
    y = layer.forward(x, train=train)
    if gy is None:
        gy = xp.asarray(numpy.random.default_rng(seed).standard_normal(y.shape))
    for p in params.values():
        p.zero_grad()
    gx = layer.backward(gy)

    def f():
        return (layer.forward(x, train=train) * gy).sum()

    report = GradCheckReport()
    if wrt_input:
        report.entries.append(compare("x", gx, numerical_gradient(f, x, eps), rtol, atol))
    for name, p in params.items():
        report.entries.append(compare(name, p.grad, numerical_gradient(f, p.data, eps), rtol, atol))
    return report


def check_loss(loss, output, target, eps=EPS, rtol=1e-6, atol=1e-9):
    """Check ``loss.backward()`` (∂loss/∂output) against finite differences."""
    _require_float64(output)
    loss.forward(output, target)
    g = loss.backward()
    report = GradCheckReport()
    report.entries.append(compare("output", g, numerical_gradient(lambda: loss.forward(output, target), output, eps), rtol, atol))
    return report


def check_network(net, x, target, loss, eps=EPS, rtol=1e-6, atol=1e-9, wrt_input=True, penalties=()):
    """Check a whole network's loss gradient (plus any penalties) w.r.t. its input and every parameter."""
    params = net.named_params()
    _require_float64(x, *(p.data for p in params.values()))
    net.zero_grad()
    _, _, gx = net.loss_and_backward(x, target, loss, train=False, penalties=penalties)

    def f():
        return net.loss_and_backward(x, target, loss, train=False, penalties=penalties)[0]

    # finite differences must not keep accumulating parameter gradients: snapshot first
    analytic = {name: p.grad.copy() for name, p in params.items()}
    report = GradCheckReport()
    with net.input_gradient_only():
        if wrt_input:
            report.entries.append(compare("x", gx, numerical_gradient(f, x, eps), rtol, atol))
        for name, p in params.items():
            report.entries.append(compare(name, analytic[name], numerical_gradient(f, p.data, eps), rtol, atol))
    return report
