"""What the Jacobian penalties cost per training step: minidnn's closed forms vs the same penalties in PyTorch.

    python bench/penalty_cost.py [--reps 7] [--models N100-100-10,ConvNet] [--backend cupy] [--json out.json]

For each of the paper's models (built by minidnn.networks.build_model), one training step (forward,
cross-entropy + penalty, backward, SGD with momentum 0.9, lr 0.01, weight decay 1e-3 on dense
weights only) on a batch of 128 MNIST-shaped random images, timed:

  plain        no penalty;
  layer-wise   Eq. 6, λ on every block (LayerwiseContractive: closed form, injections);
  global       Eq. 5 on the softmax output, MLPs only (GlobalContractive: the Gram form,
               ‖Q W₁ᵀ‖² = tr(Q G Qᵀ) with G = W₁ᵀW₁ shared by the batch);
  direct       Eq. 5 the direct way, written here: every example's K×784 Jacobian built
               explicitly, J = M W_Lᵀ D_{L−1} ⋯ D₁ W₁ᵀ, and differentiated back (MLPs only).

and, when torch is installed, the same model and optimizer written the way a PyTorch user would:

  plain        loss.backward();
  layer-wise   autograd double backward, create_graph=True: for each element-wise block
               d = ∂(Σ φ(a))/∂a = φ'(a) by autograd, then Σ_k d_k² ‖W_:k‖² (for a convolution, the
               column norms come from convolving an all-ones image with W², which counts exactly
               the taps inside the image); for the softmax block the exact ‖∂y/∂h‖² from K
               vector-Jacobian products; then the whole thing differentiated again by backward();
  global       torch.func: vmap(jacrev(x ↦ softmax(model(x)))) gives each example's K×784 Jacobian.

Each repetition times ``steps`` steps of each variant, all variants alternating; the numbers are
medians over the repetitions, and each ratio is the median of the paired ratios (same repetition).
Before timing, the penalty values of every variant are compared on one batch (same weights).
"""
import argparse
import json
import statistics

import numpy

from minidnn import backend
from minidnn.layers.activations import softmax
from minidnn.losses import SoftmaxCrossEntropy
from minidnn.networks import build_model
from minidnn.penalties import GlobalContractive, LayerwiseContractive, find_blocks
from minidnn.penalties.layerwise import _derivatives
from minidnn.training import SGD

from common import (CPU_PAUSE, alternate, blas_threads, machine_info, median_ratio, synchronize, timer,
                    torch_param_groups, torch_twin)

BATCH = 128
LAM = 0.01
MLPS = ("N100-100-10", "N200-200-10", "AE400-10")


# ---- the direct global penalty (for comparison with the Gram form) --------------------------------
class DirectGlobalContractive:
    """λ · mean_n ‖∂y_n/∂x_n‖_F² with every example's K × 784 Jacobian built explicitly.

    Forward, right to left:  P ← M W_Lᵀ (or W_Lᵀ);  P ← (P ⊙ D_l) W_lᵀ  for l = L−1 … 1, ending in
    J = P: (N, K, 784). Backward: ∂/∂J = 2λ/N · J, then through each (⊙ D_l, W_lᵀ) step: ∂W_l from
    the product, ∂D_l → φ'' injected at layer l's output, and through M into the softmax backward.
    The same interface as GlobalContractive: ``penalty(net) -> (value, injections)``.
    """

    def __init__(self, net, lam, output="softmax"):
        GlobalContractive(net, lam, output)               # the same validation (an MLP)
        self.blocks, self.lam, self.output = find_blocks(net), float(lam), output

    def __call__(self, net):
        blocks = self.blocks
        W = [b.layer.params["W"].data for b in blocks]
        xp = backend.get_array_module(W[0])
        t = W[0].dtype.type
        top = blocks[-1].layer
        n, hidden = top.x.shape[0], len(blocks) - 1
        D = [_derivatives(b) for b in blocks[:-1]]           # (φ'(a_l), φ''(a_l) or None)
        if self.output == "softmax":
            y = softmax(top.x @ W[-1] + top.params["b"].data)
            k = y.shape[1]
            diag = xp.arange(k)
            M = -y[:, :, None] * y[:, None, :]
            M[:, diag, diag] += y
            P = M @ W[-1].T
        else:
            P = xp.broadcast_to(W[-1].T, (n,) + W[-1].T.shape)
        steps = []                                           # (input of the step, after ⊙ D), top-down
        for l in range(hidden - 1, -1, -1):
            Pd = P * D[l][0][:, None, :]
            steps.append((P, Pd))
            P = Pd @ W[l].T                                  # the last one: J, (N, K, 784)
        norms = (P * P).sum(axis=(1, 2))
        scale = t(self.lam / n)
        g = t(2) * scale * P                                 # ∂/∂J
        injections = {}
        for l in range(hidden):                              # bottom-up: W_1, D_1, W_2, ...
            Pin, Pd = steps[hidden - 1 - l]
            blocks[l].layer.params["W"].accumulate(xp.einsum("nki,nkj->ij", g, Pd))
            g = g @ W[l]                                     # ∂/∂(P ⊙ D_l)
            d, d2 = D[l]
            if d2 is not None:
                injections[blocks[l].index] = (g * Pin).sum(axis=1) * d2
            g = g * d[:, None, :]                            # ∂/∂(the step's input)
        if self.output == "softmax":                         # g = ∂/∂(M W_Lᵀ)
            top.params["W"].accumulate(xp.einsum("nki,nkj->ij", g, M))
            gM = g @ W[-1]
            gy = gM[:, diag, diag] - ((gM + gM.transpose(0, 2, 1)) @ y[:, :, None])[:, :, 0]
            injections[blocks[-1].index] = y * (gy - (gy * y).sum(axis=1, keepdims=True))
        else:
            top.params["W"].accumulate(g.sum(axis=0).T)
        return self.lam * float(norms.mean()), injections


# ---- minidnn ---------------------------------------------------------------------------------------
def penalties_for(kind, net):
    if kind == "plain":
        return []
    if kind == "layer-wise":
        return [LayerwiseContractive(net, LAM)]
    if kind == "global":
        return [GlobalContractive(net, LAM, "softmax")]
    if kind == "direct":
        return [DirectGlobalContractive(net, LAM, "softmax")]
    raise ValueError(kind)


def batches(net, steps):
    rng = numpy.random.default_rng(0)
    x = rng.uniform(size=(steps, BATCH) + net.input_shape).astype(numpy.float32)
    y = rng.integers(0, 10, size=(steps, BATCH))
    return x, y


def minidnn_runner(name, kind, steps, xp_name):
    with backend.use_backend(xp_name):
        xp = backend.xp()
        net = build_model(name, rng=0).astype(module=xp)
        x, y = (xp.asarray(a) for a in batches(net, steps))
    penalties = penalties_for(kind, net)
    opt = SGD(net.named_params(), lr=0.01, momentum=0.9, weight_decay=1e-3)
    loss = SoftmaxCrossEntropy()

    def run():
        t0 = timer()
        for i in range(steps):
            opt.zero_grad()
            net.loss_and_backward(x[i], y[i], loss, train=True, penalties=penalties, need_input_grad=False)
            opt.step()
        synchronize(xp)
        return timer() - t0
    return run


def direct_vs_gram_gradients(name, xp_name):
    """Largest relative difference between the direct and the Gram form's gradients (every parameter)."""
    grads = {}
    for kind in ("global", "direct"):
        with backend.use_backend(xp_name):
            xp = backend.xp()
            net = build_model(name, rng=0).astype("float64", module=xp)
            x, y = (xp.asarray(a) for a in batches(net, 1))
            x = x.astype("float64")
            net.loss_and_backward(x[0], y[0], SoftmaxCrossEntropy(), penalties=penalties_for(kind, net))
            grads[kind] = {k: backend.to_numpy(p.grad) for k, p in net.named_params().items()}
    return max(float(numpy.abs(grads["direct"][k] - g).max() / numpy.abs(g).max()) for k, g in grads["global"].items())


def minidnn_penalty_value(name, kind, xp_name):
    """The penalty's value on the first batch, at the initial weights (for the cross-check)."""
    with backend.use_backend(xp_name):
        xp = backend.xp()
        net = build_model(name, rng=0).astype(module=xp)
        x, y = (xp.asarray(a) for a in batches(net, 1))
        value, _, _ = net.loss_and_backward(x[0], y[0], SoftmaxCrossEntropy(), penalties=penalties_for(kind, net))
        plain, _, _ = net.loss_and_backward(x[0], y[0], SoftmaxCrossEntropy())
    return float(value) - float(plain)


# ---- PyTorch, the usual way ------------------------------------------------------------------------
def torch_layerwise(model, x, lam):
    """Σ_j λ mean_n ‖∂h_j/∂h_{j−1}‖_F², differentiable (create_graph=True) for the backward pass."""
    import torch
    import torch.nn.functional as F
    mods, h, total = list(model), x, 0.0
    i = 0
    while i < len(mods):
        m = mods[i]
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
            nxt = mods[i + 1] if i + 1 < len(mods) else None
            elementwise = isinstance(nxt, (torch.nn.ReLU, torch.nn.Sigmoid, torch.nn.Tanh))
            if not elementwise and nxt is not None:
                raise NotImplementedError(f"no {type(nxt).__name__} block in this benchmark")
            if nxt is None:                                   # the softmax output block: K VJPs
                z = m(h)
                y = torch.softmax(z, dim=1)
                sq = 0.0
                for k in range(y.shape[1]):
                    g, = torch.autograd.grad(y[:, k].sum(), h, create_graph=True)
                    sq = sq + (g * g).flatten(1).sum(1)
                total = total + lam * sq.mean()
                return z, total
            a = m(h)
            out = nxt(a)
            d, = torch.autograd.grad(out.sum(), a, create_graph=True)          # φ'(a), element-wise
            if isinstance(m, torch.nn.Linear):
                w = (m.weight * m.weight).sum(1)                               # ‖W_:k‖² (torch: (out, in))
                total = total + lam * ((d * d) @ w).mean()
            else:
                ones = torch.ones_like(h[:1])
                w = F.conv2d(ones, m.weight * m.weight, stride=m.stride, padding=m.padding)   # (1, F, OH, OW)
                total = total + lam * (d * d * w).flatten(1).sum(1).mean()
            h = out
            i += 2
        else:
            h = m(h)
            i += 1
    raise ValueError("the model does not end in a Linear layer")


def torch_global(model, x, lam):
    from torch.func import jacrev, vmap
    import torch
    J = vmap(jacrev(lambda xi: torch.softmax(model(xi), dim=-1)))(x)            # (N, K, 784)
    return lam * (J * J).flatten(1).sum(1).mean()


def torch_runner(net, kind, steps, device):
    import torch
    model = torch_twin(net).to(device)
    opt = torch.optim.SGD(torch_param_groups(model, 1e-3), lr=0.01, momentum=0.9)
    x_host, y_host = batches(net, steps)
    x, y = torch.tensor(x_host).to(device), torch.tensor(y_host).to(device)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(xb, yb):
        if kind == "plain":
            return loss_fn(model(xb), yb)
        if kind == "layer-wise":
            xb = xb.requires_grad_(True)                      # the first block's Jacobian is w.r.t. x
            z, penalty = torch_layerwise(model, xb, LAM)
            return loss_fn(z, yb) + penalty
        if kind == "global":
            return loss_fn(model(xb), yb) + torch_global(model, xb, LAM)
        raise ValueError(kind)

    def run():
        t0 = timer()
        for i in range(steps):
            opt.zero_grad(set_to_none=True)
            step(x[i].clone(), y[i]).backward()
            opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        return timer() - t0

    def penalty_value():
        xb = x[0].clone().requires_grad_(True)
        if kind == "layer-wise":
            return float(torch_layerwise(model, xb, LAM)[1].detach())
        return float(torch_global(model, xb, LAM).detach())
    return run, penalty_value


# ---- the table -------------------------------------------------------------------------------------
def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7, help="alternating repetitions (medians; ≥ 5 for numbers)")
    parser.add_argument("--models", default="N100-100-10,N200-200-10,AE400-10,ConvNet")
    parser.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])
    parser.add_argument("--steps", type=float, default=1.0, help="scale the steps per repetition")
    parser.add_argument("--no-torch", action="store_true", help="minidnn only")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    info = machine_info()
    torch = None
    if not args.no_torch:
        try:
            import torch
            torch.set_num_threads(blas_threads())
            info["torch"] = f"{torch.__version__} ({torch.get_num_threads()} threads)"
        except ImportError:
            pass
    print(json.dumps(info))
    device = "cuda" if args.backend == "cupy" else "cpu"
    rows = []
    for name in args.models.split(","):
        mlp = name in MLPS
        base = (10 if mlp else 2) * (5 if args.backend == "cupy" else 1)
        steps = max(1, int(round(base * args.steps)))
        kinds = ["plain", "layer-wise"] + (["global", "direct"] if mlp else [])
        runners = [(f"minidnn {k}", minidnn_runner(name, k, steps, args.backend)) for k in kinds]
        values = {f"minidnn {k}": minidnn_penalty_value(name, k, args.backend) for k in kinds if k != "plain"}
        if torch is not None:
            net = build_model(name, rng=0)
            for k in kinds:
                if k == "direct":
                    continue
                run, value = torch_runner(net, k, steps, device)
                runners.append((f"torch {k}", run))
                if k != "plain":
                    values[f"torch {k}"] = value()
        print(f"\n{name}: {steps} steps of batch {BATCH} per repetition, {args.reps} repetitions, {args.backend}; "
              "penalty values at the first batch: " + ", ".join(f"{k} {v:.6g}" for k, v in values.items()))
        if mlp:
            print(f"  direct vs Gram form, loss + penalty gradients (float64): largest difference "
                  f"{direct_vs_gram_gradients(name, args.backend):.1e} of the largest entry")
        for _, fn in runners:                                  # warm-up (allocations, threads, kernels)
            fn()
        times = alternate(runners, args.reps, pause=CPU_PAUSE if args.backend == "numpy" else 0.0)
        ms = {k: 1000 * statistics.median(v) / steps for k, v in times.items()}
        print(f"  {'variant':<12}{'minidnn ms':>12}{'÷ plain':>9}{'torch ms':>11}{'÷ plain':>9}{'minidnn÷torch':>15}")
        for k in kinds:
            ours, theirs = f"minidnn {k}", f"torch {k}"
            row = {"model": name, "backend": args.backend, "variant": k, "steps": steps, "reps": args.reps,
                   "minidnn_ms": ms[ours], "minidnn_vs_plain": median_ratio(times[ours], times["minidnn plain"])}
            if theirs in times:
                row.update(torch_ms=ms[theirs], torch_vs_plain=median_ratio(times[theirs], times["torch plain"]),
                           minidnn_vs_torch=median_ratio(times[ours], times[theirs]))
            if k == "direct":
                row["direct_vs_gram"] = median_ratio(times[ours], times["minidnn global"])
            rows.append(row)
            cells = [format(row[key], fmt) if key in row else "-" for key, fmt in
                     (("minidnn_ms", ".2f"), ("minidnn_vs_plain", ".2f"), ("torch_ms", ".2f"),
                      ("torch_vs_plain", ".2f"), ("minidnn_vs_torch", ".2f"))]
            print(f"  {k:<12}{cells[0]:>12}{cells[1]:>9}{cells[2]:>11}{cells[3]:>9}{cells[4]:>15}")
        if mlp:
            direct = rows[-1]["direct_vs_gram"]
            print(f"  direct K×784 Jacobians ÷ Gram form (global penalty step): {direct:.2f}")
    print("\n÷ plain: the penalised step's time over the plain step's (same library); minidnn÷torch: < 1 means "
          "minidnn is faster. Medians of paired ratios over the repetitions.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "batch": BATCH, "lambda": LAM, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
