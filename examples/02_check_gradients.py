"""Check a layer's backward pass by finite differences (seconds on a CPU).

    python examples/02_check_gradients.py

The analytic gradient of a layer comes from its hand-written backward. The numeric
one comes from the definition of the derivative, with a central difference:

    ∂f/∂θ_i ≈ (f(θ + h·e_i) − f(θ − h·e_i)) / 2h,    error O(h²)

In float64 with h = 1e-6 the two agree to about 1e-8 relative; a bug in backward shows
up as an error of order 1. We check f(x) = Σ gy ⊙ layer(x) for a random gy, whose
gradient is exactly what backward(gy) returns.
"""
import numpy as np

import minidnn
from minidnn.gradcheck import check_layer, numerical_gradient
from minidnn.layers import Conv2D, Dense


def by_hand():
    """The check written out for a Dense layer y = xW + b."""
    rng = np.random.default_rng(0)
    with minidnn.use_dtype("float64"):              # float32 finite differences are too coarse
        layer = Dense(4, 3, rng=rng)
    x = rng.standard_normal((2, 4))
    gy = rng.standard_normal((2, 3))                 # plays the role of ∂L/∂y

    layer.forward(x)
    gx = layer.backward(gy)                          # analytic: gy Wᵀ, and W.grad = xᵀ gy
    f = lambda: float((layer.forward(x) * gy).sum())
    gx_numeric = numerical_gradient(f, x)            # perturbs x in place, one entry at a time
    gW_numeric = numerical_gradient(f, layer.params["W"].data)
    print("∂f/∂x  analytic vs numeric, max |difference|:", np.abs(gx - gx_numeric).max())
    print("∂f/∂W  analytic vs numeric, max |difference|:", np.abs(layer.params["W"].grad - gW_numeric).max())


def with_the_checker():
    """The library's checker does the same for inputs and every parameter, and reports the worst entry."""
    rng = np.random.default_rng(1)
    with minidnn.use_dtype("float64"):
        conv = Conv2D(2, 3, kernel_size=(3, 2), stride=(2, 1), padding=1, rng=rng)
    report = check_layer(conv, rng.standard_normal((2, 2, 7, 6)))
    print(report.table())
    report.assert_ok()                               # raises with both values if any entry is off

    class BrokenDense(Dense):                        # a deliberately wrong backward: the checker must catch it
        def backward(self, gy):
            return 1.01 * super().backward(gy)

    with minidnn.use_dtype("float64"):
        broken = BrokenDense(4, 3, rng=rng)
    report = check_layer(broken, rng.standard_normal((2, 4)))
    print("\nA broken backward (gx scaled by 1.01):")
    print(report.table())


if __name__ == "__main__":
    by_hand()
    print()
    with_the_checker()
    print("\nEvery layer kind at once: `minidnn gradcheck`")
