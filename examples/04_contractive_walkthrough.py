"""The contractive penalty, step by step: a Deep Contractive Network (the paper's Sec. 4) on a CPU.

    MINIDNN_DATA=/path/to/mnist python examples/04_contractive_walkthrough.py [--epochs 10] [--n 300]

Gu & Rigazio ask the network to be *flat* around the training data: small changes of the input x
should make small changes of the output y. The size of that sensitivity is the Jacobian ∂y/∂x, and
the ideal objective (their Eq. 5) adds its squared Frobenius norm to the loss:

    J = Σ_i  CE(t_i, y_i)  +  λ ‖∂y_i/∂x_i‖_F²

For a deep network that Jacobian is a product of one matrix per layer, expensive to differentiate,
so the paper trains a layer-wise version instead (Eq. 6), one term per layer (block) h_j = φ(h_{j−1}W + b):

    J = Σ_i [ CE(t_i, y_i)  +  Σ_j λ_j ‖∂h_j/∂h_{j−1}‖_F² ]

What this script does:
  1. writes out the Jacobian of ONE layer (Dense + sigmoid) entry by entry, and checks that its
     squared Frobenius norm equals the closed form  Σ_k d_k² ‖W_:k‖²  (d = σ'(a)) that minidnn uses;
  2. checks the penalty's gradient (for the weights, the biases and the input) by finite differences;
  3. trains a plain 784-100-100-10 ReLU network and the same network with the layer-wise penalty
     (a DCN) on MNIST, same seed, data order and schedule, and measures ‖∂y/∂x‖ on test images;
  4. attacks both with the paper's L-BFGS adversarial examples (Eq. 1) at the same constant c, and
     prints clean error, adversarial error and mean distortion: the DCN is fooled less often.
Takes about 15 s on two CPU cores (set --epochs / --n lower for a quicker look).
"""
import argparse
import os

# Small matrix products (a batch of 64 by 100): one BLAS thread is fastest, and on a busy machine
# extra threads can be 10–30 times slower. Set before NumPy is imported; export another value to override.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import time  # noqa: E402

import numpy as np  # noqa: E402

import minidnn  # noqa: E402
from minidnn.attacks import batched_lbfgs_attack, choose_targets  # noqa: E402
from minidnn.attacks.protocol import search_c  # noqa: E402
from minidnn.data import load_mnist, train_validation_split  # noqa: E402
from minidnn.gradcheck import check_network, numerical_gradient  # noqa: E402
from minidnn.layers import Dense, Sigmoid  # noqa: E402
from minidnn.losses import SoftmaxCrossEntropy  # noqa: E402
from minidnn.networks import Sequential, mlp  # noqa: E402
from minidnn.penalties import LayerwiseContractive, block_penalty, find_blocks, input_jacobian_norms, layer_norms  # noqa: E402
from minidnn.training import Trainer, classification_error, make_optimizer, make_schedule  # noqa: E402


# ---- 1. one layer's Jacobian, by brute force and in closed form --------------------------------
def one_layer_jacobian():
    print("== 1. The Jacobian of one layer h = σ(xW + b), written out ==")
    rng = np.random.default_rng(0)
    with minidnn.use_dtype("float64"):                  # float64: finite differences need the digits
        layer, act = Dense(6, 4, rng=rng), Sigmoid()
    layer.params["b"].data = rng.normal(0, 0.5, 4)      # a non-zero bias, so nothing cancels by luck
    x = rng.standard_normal((1, 6))                     # one example: (N=1, 6 inputs)

    def h(v):
        return act.forward(layer.forward(v))            # (1, 4)

    # Brute force: J[k, i] = ∂h_k/∂x_i, one central difference per input coordinate i.
    eps = 1e-6
    J = np.zeros((4, 6))
    for i in range(6):
        e = np.zeros((1, 6))
        e[0, i] = eps
        J[:, i] = (h(x + e) - h(x - e))[0] / (2 * eps)
    print("J = ∂h/∂x by central differences (4 outputs × 6 inputs):")
    print(np.array2string(J, precision=4, suppress_small=True))

    # By hand: h_k = σ(a_k), a_k = Σ_i x_i W_ik + b_k, so ∂h_k/∂x_i = σ'(a_k) W_ik, i.e. J = diag(d) Wᵀ.
    W = layer.params["W"].data                          # (6 inputs, 4 outputs)
    y = h(x)[0]
    d = y * (1 - y)                                     # σ'(a) = σ(a)(1 − σ(a)): the layer's output suffices
    print(f"diag(d) Wᵀ equals it: max |difference| = {np.abs(J - d[:, None] * W.T).max():.1e}")

    # Its squared Frobenius norm: Σ_k Σ_i d_k² W_ik² = Σ_k d_k² ‖W_:k‖², one number per column of W.
    # No Jacobian needs to be built: that is why the penalty is cheap (one (N, K) product per layer).
    brute = (J * J).sum()
    closed = (d * d) @ (W * W).sum(axis=0)
    net = Sequential([layer, act], (6,))
    norms = layer_norms(net, x)                         # what minidnn computes, per block and example
    print(f"‖J‖_F²: brute force {brute:.10f}, Σ_k d_k²‖W_:k‖² = {closed:.10f}, "
          f"minidnn.penalties.layer_norms = {norms['0:Dense+sigmoid'][0]:.10f}")
    print("   (a saturated unit, σ(a) near 0 or 1, has d ≈ 0: it contributes nothing; the penalty")
    print("    pushes units to saturate, or their incoming weights to shrink)\n")


# ---- 2. the penalty's gradient, checked ---------------------------------------------------------
def penalty_gradient():
    print("== 2. The penalty's gradient, checked by finite differences ==")
    rng = np.random.default_rng(1)
    with minidnn.use_dtype("float64"):
        net = Sequential([Dense(6, 5, rng=rng), Sigmoid(), Dense(5, 3, rng=rng)], (6,))
    x, labels = rng.standard_normal((4, 6)), rng.integers(0, 3, 4)
    print("blocks (one term of Eq. 6 each):", ", ".join(b.describe() for b in find_blocks(net)))
    # P = mean_n Σ_k d_nk² w_k  (w_k = ‖W_:k‖²) depends on W twice: directly through w, and through d,
    # which depends on a = xW + b and so on x, W, b and every earlier layer:
    #   ∂P/∂W (direct)  = (2/N) W ⊙ Σ_n d_n²
    #   ∂P/∂a (through d) = (2/N) d σ''(a) w,   σ'' = d (1 − 2σ)
    # The second is *injected* into the ordinary backward pass at the block's output a, so one sweep
    # carries the loss's gradient and the penalty's together to every parameter and to x.
    net.forward(x)
    block = find_blocks(net)[0]                          # the first block: Dense(6, 5) + sigmoid, input x
    W = block.layer.params["W"]
    W.grad = None
    norms, injection = block_penalty(block, lam=1.0)     # W.grad = the direct part; injection = ∂P/∂a
    direct = W.grad.copy()
    through_d = x.T @ injection                          # a = xW + b, so ∂P/∂W via a is xᵀ ∂P/∂a

    def P():                                             # the penalty as a plain function of W
        net.forward(x)
        return block_penalty(block, grads=False)[0].mean()
    numeric = numerical_gradient(P, W.data)
    print(f"P = mean_n ‖J_n‖² = {norms.mean():.6f};  ∂P/∂W, max |numeric − (direct + through d)| = "
          f"{np.abs(numeric - direct - through_d).max():.1e}  (direct part alone: off by "
          f"{np.abs(numeric - direct).max():.1e})")
    # The whole gradient — loss + penalty, through the injection and the backward pass — is exact:
    penalty = LayerwiseContractive(net, 1.0)
    report = check_network(net, x, labels, SoftmaxCrossEntropy(), penalties=[penalty])
    print(report.table())
    report.assert_ok()
    print("   every entry within rel. error 1e-6: the penalty's gradient is exact\n")


# ---- 3. a DCN beside a plain network -------------------------------------------------------------
def train(x, y, lam, epochs, seed):
    """784-100-100-10 ReLU (the paper's N100-100-10), momentum SGD, cosine schedule, weight decay 1e-3;
    with the layer-wise penalty when lam > 0. Same seed, same data order, same schedule."""
    net = mlp([100, 100], "relu", rng=seed, name="DCN" if lam else "plain")
    penalties = [LayerwiseContractive(net, lam)] if lam else []
    optimizer = make_optimizer("momentum", net.named_params(), lr=0.05, weight_decay=1e-3)
    Trainer(net, optimizer, batch_size=64, seed=seed, schedule=make_schedule("cosine", epochs),
            penalties=penalties, progress=False).fit(x, y, epochs)
    return net


def jacobian_report(nets, x):
    """RMS and mean ‖∂y/∂x‖_F over the images (y = softmax and logits), and each block's mean ‖∂h_j/∂h_{j−1}‖_F."""
    print(f"\nJacobian norms on {len(x)} test images (RMS = sqrt(mean ‖J‖²), the penalised quantity; and mean ‖J‖):")
    print(f"{'':>7} {'softmax RMS':>12} {'mean':>8} {'logits RMS':>11} {'mean':>8}   per block (mean ‖J_j‖)")
    for net in nets:
        cells = []
        for out in ("softmax", "logits"):
            sq = input_jacobian_norms(net, x, out).astype(np.float64)
            cells += [np.sqrt(sq.mean()), np.sqrt(sq).mean()]
        blocks = "  ".join(f"{name.split(':')[1]} {np.sqrt(v).mean():.2f}" for name, v in layer_norms(net, x).items())
        print(f"{net.describe():>7} {cells[0]:12.4f} {cells[1]:8.4f} {cells[2]:11.2f} {cells[3]:8.2f}   {blocks}")
    print("   The hidden blocks and the logits contract. The softmax is another matter: the plain network")
    print("   is sure of most images, and a saturated softmax is flat there (‖∂y/∂x‖ ≈ 0), so its *mean*")
    print("   norm is small and the DCN's, less saturated, can be larger; the RMS, weighted towards the")
    print("   uncertain images near a decision boundary (where adversarial examples are cheap), drops.")


# ---- 4. attacks at the same c ---------------------------------------------------------------------
def attack_both(nets, x, y, targets, c):
    print(f"\n== 4. L-BFGS adversarial examples (Eq. 1) at the same c = {c:.4g}, {len(y)} test images ==")
    print(f"{'':>7} {'clean error':>12} {'adv. error':>11} {'mean distortion':>16} {'seconds':>8}")
    results = []
    for net in nets:
        t0 = time.perf_counter()
        result = batched_lbfgs_attack(net, x, y, targets, c)     # every image at once, float64
        clean = classification_error(net, x, y)
        print(f"{net.describe():>7} {100 * clean:11.2f}% {100 * result.error_rate:10.1f}% "
              f"{result.mean_distortion:16.4f} {time.perf_counter() - t0:8.1f}")
        results.append(result)
    print("   adversarial error: share of the images misclassified after the attack; mean distortion:")
    print("   sqrt(mean pixel change²), averaged over the successful adversarials (the paper's measure).")
    # The mean distortion above is over each network's own successes: the contracted network's are
    # the images that were easiest to fool. A fair comparison of sizes takes the images fooled in both.
    both = results[0].success & results[1].success
    if both.any():
        sizes = [r.distortion[both].mean() for r in results]
        print(f"   on the {int(both.sum())} images fooled in both: mean distortion {nets[0].describe()} "
              f"{sizes[0]:.4f}, {nets[1].describe()} {sizes[1]:.4f}")
    print("   At the same c (the same price per unit of ‖r‖²) the contracted network is fooled less often,")
    print("   and where both are fooled it takes a larger change: its outputs move less per unit of input.")
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("MINIDNN_DATA"),
                        help="folder with the MNIST .gz files (default: $MINIDNN_DATA)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lam", type=float, default=0.003, help="λ of the layer-wise penalty, every block")
    parser.add_argument("--n", type=int, default=300, help="test images to attack")
    parser.add_argument("--c", type=float, default=None,
                        help="the attack's c (default: the paper's search, on the plain network)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    one_layer_jacobian()
    penalty_gradient()

    print("== 3. A plain network and a Deep Contractive Network, trained side by side ==")
    x, y = load_mnist("train", data_dir=args.data_dir, flat=True)
    x_test, y_test = load_mnist("test", data_dir=args.data_dir, flat=True)
    train_idx, val_idx = train_validation_split(len(x), 5000, seed=args.seed)
    nets = []
    for lam in (0.0, args.lam):
        t0 = time.perf_counter()
        net = train(x[train_idx], y[train_idx], lam, args.epochs, args.seed)
        print(f"{net.describe():>7} (λ = {lam:g}): test error {100 * classification_error(net, x_test, y_test):.2f}%, "
              f"validation {100 * classification_error(net, x[val_idx], y[val_idx]):.2f}% "
              f"({time.perf_counter() - t0:.0f} s)")
        nets.append(net)
    jacobian_report(nets, x_test[:1000])

    c = args.c
    if c is None:
        # The paper's constant: the largest c that still fools the plain network on ≥ 99.5% of 100
        # validation images; then the same c for the DCN.
        print("\nchoosing c on the plain network (100 validation images, ≥ 99.5% adversarial error):")
        rows = np.random.default_rng(args.seed).permutation(len(val_idx))[:100]
        xs, ys = x[val_idx][rows], y[val_idx][rows]
        ts = choose_targets(nets[0], xs, ys, "random", rng=args.seed + 1)
        c, _ = search_c(lambda c: batched_lbfgs_attack(nets[0], xs, ys, ts, c), threshold=0.995, c0=1.0,
                        log=lambda line: print("   " + line))
    xa, ya = x_test[:args.n], y_test[:args.n]
    targets = choose_targets(nets[0], xa, ya, "random", rng=args.seed + 2)     # the same targets for both
    attack_both(nets, xa, ya, targets, c)


if __name__ == "__main__":
    main()
