"""Optimizers against hand-computed updates, and the weight-decay convention."""
import numpy
import pytest

from minidnn.layers import Conv2D, Dense, Flatten, Parameter
from minidnn.networks import Sequential
from minidnn.training import SGD, Adam, l2_penalty, make_optimizer

TARGET = numpy.array([[1.0, -2.0], [0.5, 3.0]])


def loss_gradient(theta):
    """∇ of ½‖θ − T‖² + ⅙Σθ³: a gradient that changes with θ, so the three steps differ."""
    return theta - TARGET + 0.5 * theta ** 2


def run(optimizer_factory, steps=3, decay=True):
    """Three steps of ``optimizer`` on θ₀ (float64, so the comparison can be tight)."""
    p = Parameter(numpy.array([[0.3, -0.7], [1.2, 0.1]]), decay=decay)
    optimizer = optimizer_factory({"w": p})
    trajectory = []
    for _ in range(steps):
        optimizer.zero_grad()
        p.accumulate(loss_gradient(p.data))
        optimizer.step()
        trajectory.append(p.data.copy())
    return trajectory


def reference(update, steps=3, weight_decay=0.0):
    theta, state, trajectory = numpy.array([[0.3, -0.7], [1.2, 0.1]]), {}, []
    for t in range(1, steps + 1):
        g = loss_gradient(theta) + weight_decay * theta
        theta = update(theta, g, state, t)
        trajectory.append(theta.copy())
    return trajectory


def sgd(lr):
    return lambda theta, g, state, t: theta - lr * g


def momentum(lr, mu):
    """PyTorch's form: b ← μb + g, θ ← θ − ηb (the same iterates as v ← μv − ηg, θ ← θ + v)."""
    def update(theta, g, state, t):
        state["b"] = mu * state.get("b", 0.0) + g
        return theta - lr * state["b"]
    return update


def nesterov(lr, mu):
    """PyTorch's form: b ← μb + g, θ ← θ − η(g + μb)."""
    def update(theta, g, state, t):
        state["b"] = mu * state.get("b", 0.0) + g
        return theta - lr * (g + mu * state["b"])
    return update


def adam(lr, b1, b2, eps):
    """Kingma & Ba, Algorithm 1: m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ), θ ← θ − η m̂/(√v̂ + ε)."""
    def update(theta, g, state, t):
        state["m"] = b1 * state.get("m", 0.0) + (1 - b1) * g
        state["v"] = b2 * state.get("v", 0.0) + (1 - b2) * g * g
        m_hat, v_hat = state["m"] / (1 - b1 ** t), state["v"] / (1 - b2 ** t)
        return theta - lr * m_hat / (numpy.sqrt(v_hat) + eps)
    return update


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize("factory, update", [
    (lambda wd: lambda p: SGD(p, lr=0.1, weight_decay=wd), sgd(0.1)),
    (lambda wd: lambda p: SGD(p, lr=0.1, momentum=0.9, weight_decay=wd), momentum(0.1, 0.9)),
    (lambda wd: lambda p: SGD(p, lr=0.1, momentum=0.8, nesterov=True, weight_decay=wd), nesterov(0.1, 0.8)),
    (lambda wd: lambda p: Adam(p, lr=0.05, weight_decay=wd), adam(0.05, 0.9, 0.999, 1e-8)),
    (lambda wd: lambda p: Adam(p, lr=0.01, betas=(0.5, 0.9), eps=1e-3, weight_decay=wd), adam(0.01, 0.5, 0.9, 1e-3)),
], ids=["sgd", "momentum", "nesterov", "adam", "adam-custom"])
def test_three_steps_match_the_textbook_formulas(factory, update, weight_decay):
    got = run(factory(weight_decay))
    want = reference(update, weight_decay=weight_decay)
    for step, (a, b) in enumerate(zip(got, want), 1):
        numpy.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15, err_msg=f"step {step}")
    assert not numpy.allclose(got[0], got[2])                # the steps really moved θ


def test_weight_decay_applies_only_to_decayed_parameters():
    """With zero loss gradients, one SGD step moves exactly the decayed weights, by −ηλW."""
    net = Sequential([Conv2D(1, 2, 2, rng=0), Flatten(), Dense(8, 3, rng=1)], (1, 3, 3))
    params = net.named_params()
    assert {k for k, p in params.items() if p.decay} == {"2.W"}            # not biases, not conv kernels
    before = {k: p.data.copy() for k, p in params.items()}
    for p in params.values():
        p.grad = numpy.zeros_like(p.data)
    SGD(params, lr=0.5, weight_decay=0.1).step()
    for k, p in params.items():
        want = before[k] * (1 - 0.5 * 0.1) if k == "2.W" else before[k]
        numpy.testing.assert_allclose(p.data, want, rtol=1e-6)
    lam = 0.1
    assert l2_penalty(params, lam) == pytest.approx(lam / 2 * float((params["2.W"].data.astype(float) ** 2).sum()))


def test_a_dict_gives_each_parameter_its_own_decay():
    net = Sequential([Dense(3, 4, rng=0), Dense(4, 2, rng=1)], (3,))
    params = net.named_params()
    decay = {"0.W": 0.2, "1.b": 0.3}                                        # a bias too, when named
    for p in params.values():
        p.data = p.data.astype(numpy.float64) + 1.0
        p.grad = numpy.zeros_like(p.data)
    before = {k: p.data.copy() for k, p in params.items()}
    SGD(params, lr=0.1, weight_decay=decay).step()
    for k, p in params.items():
        numpy.testing.assert_allclose(p.data, before[k] * (1 - 0.1 * decay.get(k, 0.0)), rtol=1e-12)
    want = sum(0.5 * lam * (params[k].data ** 2).sum() for k, lam in decay.items())
    assert l2_penalty(params, decay) == pytest.approx(want, rel=1e-12)


def test_make_optimizer_by_name():
    params = {"w": Parameter(numpy.zeros(2))}
    assert type(make_optimizer("adam", params, lr=0.1, momentum=0.9)) is Adam
    plain = make_optimizer("sgd", params, lr=0.1)
    assert plain.momentum == 0 and not plain.nesterov
    heavy = make_optimizer("momentum", params, lr=0.1)
    assert heavy.momentum == 0.9 and not heavy.nesterov
    nag = make_optimizer("Nesterov", params, lr=0.1, momentum=0.5)
    assert nag.momentum == 0.5 and nag.nesterov
    assert nag.config() == {"type": "sgd", "lr": 0.1, "momentum": 0.5, "nesterov": True}
    with pytest.raises(ValueError, match="'rmsprop'"):
        make_optimizer("rmsprop", params)


def test_bad_settings_and_missing_gradients_are_named():
    params = {"layer.W": Parameter(numpy.zeros(2))}
    with pytest.raises(ValueError, match="learning rate"):
        SGD(params, lr=0)
    with pytest.raises(ValueError, match="Nesterov"):
        SGD(params, lr=0.1, nesterov=True)
    with pytest.raises(RuntimeError, match="'layer.W' has no gradient"):
        SGD(params, lr=0.1).step()


def test_state_round_trip_continues_identically():
    def fresh():
        p = Parameter(numpy.array([0.5, -1.0, 2.0]))
        return p, Adam({"w": p}, lr=0.1)

    p, opt = fresh()
    for _ in range(2):
        p.grad = p.data ** 3
        opt.step()
    q, other = fresh()
    q.data = p.data.copy()
    other.load_state_arrays(opt.state_arrays(), opt.scalars())
    assert sorted(opt.state_arrays()) == ["w/m", "w/v"] and other.steps == 2
    for param, optimizer in ((p, opt), (q, other)):
        param.grad = param.data ** 3
        optimizer.step()
    numpy.testing.assert_array_equal(p.data, q.data)
    with pytest.raises(ValueError, match="unknown parameter 'x'"):
        other.load_state_arrays({"x/m": numpy.zeros(3)}, opt.scalars())
