"""The global contractive penalty (the paper's Eq. 5): ‖∂y/∂x‖_F² of the whole network, exact.

For an MLP  a_l = h_{l−1} W_l + b_l,  h_l = φ(a_l)  (l < L),  y = softmax(a_L) (or the
logits a_L), one example's Jacobian is the product

    ∂y/∂x = M W_Lᵀ D_{L−1} W_{L−1}ᵀ ⋯ D_1 W_1ᵀ,    D_l = diag φ'(a_l),  M = diag(y) − y yᵀ

(M = I for the logits). Writing Q = M W_Lᵀ D_{L−1} ⋯ D_1 (K × H_1), the 784-wide
factor enters only through the Gram matrix G = W_1ᵀ W_1 (H_1 × H_1), shared by the
batch:  ‖∂y/∂x‖_F² = ‖Q W_1ᵀ‖_F² = tr(Q G Qᵀ).  So no per-example K × 784 Jacobian is
ever built (bench/penalty_cost.py measures both ways).

The gradient runs the product backwards: ∂P/∂Q = 2 Q G, ∂P/∂G = Qᵀ Q (→ ∂P/∂W_1 = 2 W_1 QᵀQ);
through each Q ← (Q W_lᵀ) ⊙ D: ∂/∂W_l from the product, ∂/∂D_l = Σ_k ∂Q ⊙ (Q W_lᵀ), then
∂/∂a_l = ∂/∂D_l · φ''(a_l) (zero for ReLU) is injected into the backward pass at layer
l's affine output; through M: ∂P/∂y = diag(∂M) − (∂M + ∂Mᵀ) y, then the softmax backward.
"""
from .. import backend
from ..layers import Dense, GaussianNoise, Softmax
from ..layers.activations import softmax
from .blocks import find_blocks
from .batched import diagonals, softmax_jacobians, stacked_products
from .layerwise import _derivatives


def _mlp_blocks(net):
    """The blocks of an MLP: Dense + ReLU/sigmoid/tanh blocks (any number, 0 included), then Dense
    logits. GaussianNoise layers may sit anywhere but between a Dense and its activation: x + ε has
    the identity Jacobian, so they change the caches the penalty reads but not the formula."""
    blocks = find_blocks(net)
    weighted = [layer for layer in net.layers if not isinstance(layer, GaussianNoise)]
    ok = (blocks and all(isinstance(b.layer, Dense) for b in blocks)
          and blocks[-1].activation == "softmax" and blocks[-1].index == len(net.layers) - 1
          and all(b.activation in ("relu", "sigmoid", "tanh") for b in blocks[:-1])
          and len(weighted) == 2 * len(blocks) - 1)
    if not ok:
        raise ValueError(f"the exact global penalty needs an MLP (Dense + ReLU/sigmoid/tanh blocks ending in "
                         f"logits); {net.describe()} has blocks {[b.describe() for b in blocks]}")
    return blocks


def global_penalty(net, output="softmax", lam=1.0, grads=True):
    """Per-example ‖∂y/∂x‖_F² from the last forward pass's caches.

    output: 'softmax' (y = probabilities) or 'logits'. With ``grads``, accumulates
    λ·∂mean/∂W into the weights and returns the injections {layer index: ∂/∂(output)}.
    Returns (norms (N,), injections).
    """
    if output not in ("softmax", "logits"):
        raise ValueError(f"output must be 'softmax' or 'logits', got {output!r}")
    blocks = _mlp_blocks(net)
    top = blocks[-1].layer
    W = [b.layer.params["W"].data for b in blocks]
    xp = backend.get_array_module(W[0])
    t = W[0].dtype.type
    n = top.x.shape[0]
    derivs = [_derivatives(b) for b in blocks[:-1]]          # (D_l, φ''_l) for the hidden blocks

    # ---- forward through the product, keeping each factor for the backward
    # With no hidden layer the product is M (or I) itself and G = W_Lᵀ W_L below.
    hidden = len(blocks) > 1
    if output == "softmax":
        y = softmax(top.x @ W[-1] + top.params["b"].data)
        M = softmax_jacobians(y)                             # diag(y) − y yᵀ: (N, K, K)
        Q = stacked_products(M, W[-1].T) if hidden else M            # (N, K, H_{L−1})
    elif hidden:
        Q = xp.broadcast_to(W[-1].T, (n,) + W[-1].T.shape)
    else:
        Q = xp.broadcast_to(xp.eye(W[-1].shape[1], dtype=W[-1].dtype), (n, W[-1].shape[1], W[-1].shape[1]))
    pre = [Q]                                                # Q W_lᵀ before ⊙ D, top-down
    for l in range(len(blocks) - 2, -1, -1):
        Q = Q * derivs[l][0][:, None, :]
        if l > 0:
            Q = stacked_products(Q, W[l].T)
            pre.append(Q)
    G = W[0].T @ W[0]                                        # (H_1, H_1)
    QG = stacked_products(Q, G)
    norms = (QG * Q).sum(axis=(1, 2))                        # tr(Q G Qᵀ)
    if not grads:
        return norms, {}

    # ---- backward through the product
    scale = t(lam / n)
    params = [b.layer.params["W"] if b.layer.compute_param_grads else None for b in blocks]
    if params[0] is not None:
        params[0].accumulate(t(2) * scale * (W[0] @ xp.tensordot(Q, Q, axes=([0, 1], [0, 1]))))
    gQ = t(2) * scale * QG                                   # ∂/∂Q after the last ⊙ D_1
    injections = {}
    for l in range(len(blocks) - 1):                         # up the chain: D_1, W_2, D_2, W_3, ...
        Qpre = pre[len(pre) - 1 - l]                         # Q W_{l+2}ᵀ … (before ⊙ D_{l+1})
        D, d2 = derivs[l]
        if d2 is not None:                                   # ∂/∂a_l = (Σ_k gQ ⊙ Qpre) φ''(a_l)
            injections[blocks[l].index] = (gQ * Qpre).sum(axis=1) * d2
        gQ = gQ * D[:, None, :]                              # ∂/∂Qpre
        if l + 1 < len(blocks) - 1:                          # Qpre = (pre above ⊙ D_{l+1}) W_{l+1}ᵀ
            below = pre[len(pre) - 2 - l] * derivs[l + 1][0][:, None, :]
        else:                                                # Qpre = M W_Lᵀ, or W_Lᵀ itself (logits)
            below = M if output == "softmax" else None
        if below is None:
            if params[l + 1] is not None:
                params[l + 1].accumulate(gQ.sum(axis=0).T)
        else:
            if params[l + 1] is not None:
                params[l + 1].accumulate(xp.tensordot(gQ, below, axes=([0, 1], [0, 1])))
            gQ = stacked_products(gQ, W[l + 1])                      # ∂/∂below
    if output == "softmax":                                  # gQ is now ∂/∂M
        gy = diagonals(gQ) - ((gQ + gQ.transpose(0, 2, 1)) @ y[:, :, None])[:, :, 0]
        injections[blocks[-1].index] = y * (gy - (gy * y).sum(axis=1, keepdims=True))
    return norms, injections


class GlobalContractive:
    """λ · mean_n ‖∂y_n/∂x_n‖_F² (Eq. 5) as a training penalty (see ``Sequential.loss_and_backward``)."""

    def __init__(self, net, lam, output="softmax"):
        if output not in ("softmax", "logits"):
            raise ValueError(f"output must be 'softmax' or 'logits', got {output!r}")
        _mlp_blocks(net)
        self.lam, self.output = float(lam), output

    def __call__(self, net):
        norms, injections = global_penalty(net, self.output, self.lam)
        return self.lam * norms.mean(), injections     # a device scalar: no synchronisation per step

    def config(self):
        return {"type": "global", "lam": self.lam, "output": self.output}


def input_jacobian_norms(net, x, output="softmax", batch_size=500):
    """Exact per-example ‖∂y/∂x‖_F² for any network: one backward pass per output unit.

    Slower than the closed form but general (ConvNet included), and independent of it.
    x: (N, *net.input_shape); y = softmax(z) or the logits z. A network that ends in a
    Softmax layer is read up to its logits (its probabilities are not put through softmax
    a second time). Noise layers run in evaluation mode. Returns (N,).
    """
    if output not in ("softmax", "logits"):
        raise ValueError(f"output must be 'softmax' or 'logits', got {output!r}")
    if tuple(x.shape[1:]) != net.input_shape:
        net.forward(x)                                       # raises the shape error
    xp = backend.get_array_module(x)
    layers = net.layers
    if layers and isinstance(layers[-1], Softmax):
        layers = layers[:-1]
    norms = []
    with net.input_gradient_only():
        for s in range(0, x.shape[0], batch_size):
            xb = x[s:s + batch_size]
            z = xb
            for layer in layers:                             # one forward; each backward reads its caches
                z = layer.forward(z)
            y = softmax(z) if output == "softmax" else None
            total = xp.zeros(xb.shape[0], dtype=z.dtype)
            for k in range(z.shape[1]):
                gz = xp.zeros_like(z)
                if y is None:
                    gz[:, k] = 1
                else:                                        # ∂y_k/∂z = y_k (e_k − y)
                    gz -= y[:, k:k + 1] * y
                    gz[:, k] += y[:, k]
                for layer in reversed(layers):
                    gz = layer.backward(gz)
                gx = gz.reshape(xb.shape[0], -1)
                total += (gx * gx).sum(axis=1)
            norms.append(total)
    return xp.concatenate(norms)
