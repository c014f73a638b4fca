"""Layer-wise contractive penalty (the paper's Eq. 6), in closed form with its exact gradient.

For a block h = φ(a), a = x W + b (x: (N, I), W: (I, K)) the Jacobian of one example is
J = diag(φ'(a)) Wᵀ, so, with d = φ'(a) and w_k = ‖W_{:,k}‖² (column norms):

    ‖J‖_F² = Σ_k d_k² w_k                                   (element-wise φ)

and for the softmax output y = softmax(a), with M = diag(y) − y yᵀ and G = Wᵀ W (K × K,
shared by the whole batch):

    ‖J‖_F² = ‖M Wᵀ‖_F² = tr(M² G).

Convolution (x: (N, C, H, W), W: (F, C, KH, KW), zero padding p, stride s): output
(f, o) sees input pixel (c, s·o + κ − p) through W[f, c, κ] only where that pixel lies in
the image, so with Ω[f, κ] = Σ_c W[f, c, κ]² and the border masks R[o_h, κ_h], C[o_w, κ_w]
(1 where the row/column is inside the image):

    ‖J‖_F² = Σ_{f,o} d[f, o]² w[f, o],   w[f, o_h, o_w] = Σ_κ R[o_h, κ_h] Ω[f, κ] C[o_w, κ_w].

The penalty is P = mean_n ‖J_n‖_F². Its gradient has two parts:
* through the weights directly (w or G): ∂P/∂W = 2 W ⊙ (…), see each case;
* through d (or y), i.e. through the block's input and so every earlier layer: the
  gradient w.r.t. the pre-activation a, ∂P/∂a = (2/N) d φ''(a) w, returned as an
  *injection* that the network's backward pass adds at the block's affine output.
  φ'' is 0 a.e. for ReLU (no injection); σ'' = d(1 − 2σ); tanh'' = −2 tanh·d.
  Softmax: with B = G M + M G, ∂P/∂y = diag(B) − 2 B y, then the softmax backward.
"""
from .. import backend
from ..layers.activations import softmax
from ..layers import Dense
from .batched import diagonals, softmax_jacobians, stacked_products
from .blocks import find_blocks


def _derivatives(block):
    """(d = φ'(a), d' = φ''(a) or None) from the activation layer's forward cache."""
    act, kind = block.act_layer, block.activation
    if kind == "relu":
        return act.mask.astype(_dtype(block)), None
    if kind == "sigmoid":
        y = act.y
        d = y * (1 - y)
        return d, d * (1 - 2 * y)
    if kind == "tanh":
        y = act.y
        d = 1 - y * y
        return d, -2 * y * d
    if kind == "linear":
        return None, None
    raise ValueError(f"no element-wise derivative for {kind}")


def _dtype(block):
    return block.layer.params["W"].data.dtype


def _border_masks(conv, h, w):
    """R: (OH, KH) and C: (OW, KW), 1 where input row/column s·o + κ − p lies inside the image."""
    xp = backend.get_array_module(conv.params["W"].data)
    (kh, kw), (sh, sw), (ph, pw) = conv.kernel_size, conv.stride, conv.padding
    out_h, out_w = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    rows = sh * xp.arange(out_h)[:, None] + xp.arange(kh)[None, :] - ph
    cols = sw * xp.arange(out_w)[:, None] + xp.arange(kw)[None, :] - pw
    dt = conv.params["W"].data.dtype
    return ((rows >= 0) & (rows < h)).astype(dt), ((cols >= 0) & (cols < w)).astype(dt)


def block_penalty(block, lam=1.0, grads=True):
    """Per-example ‖J‖_F² of one block from the forward caches (the last forward pass).

    Returns (norms: (N,), injection: ∂(λ P)/∂a or None); with ``grads`` the direct
    weight gradient λ ∂P/∂W is accumulated into the layer's W.grad (unless the layer
    computes no parameter gradients, as inside ``Sequential.input_gradient_only``).
    """
    layer, kind = block.layer, block.activation
    W = layer.params["W"].data
    xp = backend.get_array_module(W)
    t = W.dtype.type
    if kind == "softmax":
        x = layer.x                                              # (N, I)
        y = softmax(x @ W + layer.params["b"].data)              # (N, K)
        n = y.shape[0]
        G = W.T @ W                                              # (K, K)
        M = softmax_jacobians(y)                                 # M = diag(y) − y yᵀ: (N, K, K)
        MG = stacked_products(M, G)
        norms = xp.einsum("nij,nij->n", MG, M)                   # tr(M G M) = tr(M² G)
        if not grads:
            return norms, None
        if layer.compute_param_grads:                            # ∂/∂W tr(M̄² WᵀW); Σ_n M_n² = Σ_n M_nᵀM_n
            rows = M.reshape(-1, M.shape[2])                     # (N·K, K): the M_n stacked
            layer.params["W"].accumulate(t(2 * lam / n) * (W @ (rows.T @ rows)))
        B = MG + MG.transpose(0, 2, 1)                           # G M + M G  (both symmetric)
        gy = diagonals(B) - 2 * (B @ y[:, :, None])[:, :, 0]                # diag(B) − 2 B y
        ga = y * (gy - (gy * y).sum(axis=1, keepdims=True))      # softmax backward
        return norms, ga * t(lam / n)
    d, d2 = _derivatives(block)
    if isinstance(layer, Dense):
        if d is None:                                            # linear: J = Wᵀ, constant in x
            d = xp.ones((layer.x.shape[0], W.shape[1]), dtype=W.dtype)
        w = xp.einsum("ik,ik->k", W, W)                          # (K,) column norms, no (I, K) temporary
        sq = d * d
        norms = sq @ w
        n = sq.shape[0]
        if not grads:
            return norms, None
        if layer.compute_param_grads:
            layer.params["W"].accumulate(W * (t(2 * lam / n) * sq.sum(axis=0)))
        return norms, (None if d2 is None else t(2 * lam / n) * d * d2 * w)
    # Conv2D: d (N, F, OH, OW)
    h, wid = layer.x_shape[2:]
    R, C = _border_masks(layer, h, wid)
    omega = (W * W).sum(axis=1)                                  # (F, KH, KW)
    wmap = xp.einsum("ai,fij,bj->fab", R, omega, C)              # (F, OH, OW)
    if d is None:
        d = xp.ones((layer.x_shape[0],) + wmap.shape, dtype=W.dtype)
    sq = d * d
    norms = (sq * wmap).sum(axis=(1, 2, 3))
    n = sq.shape[0]
    if not grads:
        return norms, None
    if layer.compute_param_grads:
        g_omega = xp.einsum("fab,ai,bj->fij", sq.sum(axis=0), R, C)  # ∂(Σ_n norms)/∂Ω
        layer.params["W"].accumulate(t(2 * lam / n) * W * g_omega[:, None])
    return norms, (None if d2 is None else t(2 * lam / n) * d * d2 * wmap)


class LayerwiseContractive:
    """Σ_j λ_j · mean_n ‖∂h_j/∂h_{j−1}‖_F²  (Eq. 6), as a training penalty.

    lam: one λ for every block, or a list with one λ per block (``find_blocks`` order).
    Called after a forward pass: adds λ ∂P/∂W to the weights' gradients and returns
    (value, {layer index: ∂(penalty)/∂(that layer's output)}) for the backward pass.
    """

    def __init__(self, net, lam):
        self.blocks = find_blocks(net)
        try:                                                     # a sequence (list, tuple, array) ...
            lams = [float(v) for v in lam]
        except TypeError:                                        # ... or one number for every block
            lams = [float(lam)] * len(self.blocks)
        if len(lams) != len(self.blocks):
            raise ValueError(f"{len(lams)} λ values given for {len(self.blocks)} blocks "
                             f"({', '.join(b.describe() for b in self.blocks)})")
        self.lams = [float(v) for v in lams]

    def config(self):
        return {"type": "layerwise", "lams": self.lams}

    def __call__(self, net):
        value, injections = 0.0, {}
        for block, lam in zip(self.blocks, self.lams):
            if lam == 0:
                continue
            norms, inj = block_penalty(block, lam)
            value = value + lam * norms.mean()          # stays on the device: the trainer reads it later
            if inj is not None:
                injections[block.index] = inj
        return value, injections


def layer_norms(net, x):
    """Per-block per-example ‖∂h_j/∂h_{j−1}‖_F² at x (evaluation mode): {block name: (N,)}."""
    net.forward(x)
    return {b.describe(): block_penalty(b, grads=False)[0] for b in find_blocks(net)}
