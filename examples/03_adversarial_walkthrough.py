"""Adversarial examples, step by step: the paper's Eq. 1 on a small MLP (about 10 s on a 2-core CPU).

    MINIDNN_DATA=/path/to/mnist python examples/03_adversarial_walkthrough.py [--out examples_output]

Szegedy et al. (2014) and Gu & Rigazio (2014, Eq. 1) find an adversarial example for an
image x and a wrong target label l by solving

    minimise_r   c·‖r‖² + CE(f(x + r), l)      subject to   x + r ∈ [0, 1]^784

The cross-entropy CE pulls x + r towards class l; the c·‖r‖² term keeps the perturbation r
small. With box-constrained L-BFGS (L-BFGS-B) the problem is solved for each image.

What this script does:
  1. trains a 784-100-10 MLP for a few epochs;
  2. builds the objective for one test image and looks at its value and gradient;
  3. attacks that image with the reference solver (scipy's L-BFGS-B) at several c, to show
     what c does: a small c buys success with a large r, a large c keeps r small and may fail;
  4. explains the box, and saves a picture of the adversarials and their noise;
  5. runs the paper's protocol: one c for the whole model, chosen on validation images;
  6. attacks a few hundred test images at that c with both the reference and the batched
     solver (every image at once, vectorised on NumPy or CuPy), and compares them.
Figures go to --out (default examples_output/).
"""
import argparse
import os

# The attacks multiply small matrices (a few hundred rows by 784) thousands of times. For
# such sizes one BLAS thread is fastest, and on a busy machine extra threads can be 10–30
# times slower. This must be set before NumPy is imported; export another value to override.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import time  # noqa: E402

import numpy as np  # noqa: E402

from minidnn.attacks import (AttackObjective, batched_lbfgs_attack, choose_targets,  # noqa: E402
                             lbfgsb_attack, network_copy)
from minidnn.attacks.protocol import search_c  # noqa: E402
from minidnn.data import load_mnist, train_validation_split  # noqa: E402
from minidnn.networks import mlp  # noqa: E402
from minidnn.training import Trainer, classification_error, make_optimizer  # noqa: E402


def train_small_mlp(x_train, y_train, x_val, y_val, epochs, seed):
    """784 → 100 → ReLU → 10 logits, momentum SGD; about 3% test error after three epochs."""
    net = mlp([100], rng=seed, name="N100-10")
    optimizer = make_optimizer("momentum", net.named_params(), lr=0.05, weight_decay=1e-4)
    Trainer(net, optimizer, batch_size=128, seed=seed, progress=False).fit(x_train, y_train, epochs, x_val, y_val)
    return net


def show_objective(net, x, label, target, c):
    """Step 2: the objective f(x') = c·‖x' − x‖² + CE(net(x'), target) and its gradient, by hand."""
    print(f"\n== 2. The objective for one image (true label {label}, target {target}, c = {c}) ==")
    # The attack optimises x' = x + r directly (the bounds are then simply 0 ≤ x' ≤ 1). It
    # works in float64 so that the line search is not fooled by rounding: a float64 copy.
    net64 = network_copy(net, np.float64)
    x0 = x[None].astype(np.float64)                      # a batch of one: (1, 784)
    objective = AttackObjective(net64, c, x0, np.array([target]))

    # At r = 0 the penalty vanishes and f is the cross-entropy of the target on the clean image.
    f, g, logits = objective(x0)
    p = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    print(f"at r = 0: f = {f[0]:.4f} = CE(target) = −log p(target) = −log {p[0, target]:.2e}")
    print(f"          the network says {int(logits.argmax())} with p = {p.max():.3f}")
    # The gradient is the network's own backward pass:  ∇f = 2c·r + Jᵀ(softmax(z) − onehot(target))
    print(f"          ‖∇f‖₂ = {np.linalg.norm(g):.4f}; the largest pull is on pixel {int(np.abs(g).argmax())}")

    # Is that gradient right? A central difference along a random direction d must agree with ∇f·d.
    d = np.random.default_rng(0).standard_normal(x0.shape)
    h = 1e-6
    numeric = (objective(x0 + h * d)[0][0] - objective(x0 - h * d)[0][0]) / (2 * h)
    print(f"          directional derivative: analytic ∇f·d = {float((g * d).sum()):.8f}, "
          f"finite difference = {numeric:.8f}")

    # Away from r = 0 the penalty term appears: at x' = x − 0.01·∇f/‖∇f‖ (a small step downhill)
    step = x0 - 0.01 * g / np.linalg.norm(g)
    f_step, _, _ = objective(np.clip(step, 0, 1))
    print(f"          a step of length 0.01 downhill: f = {f_step[0]:.4f} (includes c·‖r‖² ≈ {c * 1e-4:.1e})")

    # Why the box matters: MNIST is mostly black (0). Going downhill means x' = x − t·∇f; every
    # black pixel whose gradient is positive would become negative: not an image any more.
    black = x0[0] == 0
    outward = black & (g[0] > 0)
    print(f"\n   The box: {int(black.sum())} of the 784 pixels are exactly 0 (black), "
          f"{int((x0[0] == 1).sum())} exactly 1 (white);")
    print(f"   the downhill direction would push {int(outward.sum())} black pixels below 0. L-BFGS-B keeps")
    print("   them at the bound (they are 'active'), and moves only the free pixels.")


def c_sweep(net, x, label, target, cs):
    """Step 3: what c does, on one image, with the reference solver (scipy's L-BFGS-B)."""
    print("\n== 3. One image, several c (reference solver: scipy L-BFGS-B, float64) ==")
    print(f"{'c':>8} {'prediction':>11} {'target hit':>11} {'‖r‖₂':>8} {'distortion':>11} "
          f"{'pixels at 0/1':>14} {'iterations':>11}")
    results = []
    for c in cs:
        result = lbfgsb_attack(net, x[None], np.array([label]), np.array([target]), c)
        adv = result.adversarial[0]
        at_bound = int(((adv == 0) | (adv == 1)).sum())
        print(f"{c:8.3g} {int(result.predicted[0]):>11d} {str(bool(result.hit_target[0])):>11} "
              f"{result.l2[0]:8.3f} {result.distortion[0]:11.4f} {at_bound:>14d} {int(result.iterations[0]):>11d}")
        # the box holds exactly, always: the solver never leaves [0, 1]
        assert adv.min() >= 0 and adv.max() <= 1
        results.append(result)
    print("   distortion = sqrt(mean((x' − x)²)) over the 784 pixels, the paper's measure.")
    print("   Small c: the cross-entropy dominates, the target is reached, r is large.")
    print("   Large c: ‖r‖² dominates, r shrinks and at some point the attack stops succeeding.")
    print("   The paper picks ONE c per model: the largest c that still fools the model on ≥ 99% of the")
    print("   images (step 5 asks for 99.5% on the validation images it searches on, as a margin).")
    return results


def save_sweep_figure(path, x, label, cs, results):
    """Step 4: the image, its adversarials at each c, and their noise r (grey: 0, white: +, black: −)."""
    from minidnn.attacks.figure import attack_figure, noise_image
    images = [x] + [r.adversarial[0] for r in results]
    noise = [np.zeros_like(x) + 0.5] + [noise_image(r.adversarial[0] - x) for r in results]
    captions = [f"original: {label}"] + [f"c={c:g}: {int(r.predicted[0])}" for c, r in zip(cs, results)]
    attack_figure(path, [("image", images, captions),
                         ("noise", noise, [""] + [f"d={r.distortion[0]:.3f}" for r in results])],
                  title="one test image, attacked at several c (noise scaled to its own maximum)")


def compare_solvers(net, x, y, targets, c):
    """Step 6: the batched solver (all images at once, on the array backend) against the reference."""
    print(f"\n== 6. {len(y)} test images at c = {c:.4g}: reference vs batched ==")
    t0 = time.perf_counter()
    reference = lbfgsb_attack(net, x, y, targets, c)
    t_reference = time.perf_counter() - t0
    t0 = time.perf_counter()
    batched = batched_lbfgs_attack(net, x, y, targets, c)
    t_batched = time.perf_counter() - t0
    print(f"{'solver':>10} {'error rate':>11} {'target hit':>11} {'mean distortion':>16} {'iterations':>11} "
          f"{'seconds':>8}")
    for name, result, seconds in (("reference", reference, t_reference), ("batched", batched, t_batched)):
        print(f"{name:>10} {100 * result.error_rate:10.1f}% {100 * result.hit_target.mean():10.1f}% "
              f"{result.mean_distortion:16.4f} {result.iterations.mean():11.1f} {seconds:8.2f}")
    same = (reference.success == batched.success).mean()
    print(f"   the two agree on the verdict for {100 * same:.1f}% of the images; every adversarial is in "
          f"the box: {bool(batched.adversarial.min() >= 0 and batched.adversarial.max() <= 1)}")
    print("   (the error rate counts every image whose prediction is wrong, the paper's measure;")
    print("    mean distortion is over those successful adversarials only)")
    return batched


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="examples_output", help="folder for the figures")
    parser.add_argument("--data-dir", default=os.environ.get("MINIDNN_DATA"),
                        help="folder with the MNIST .gz files (default: $MINIDNN_DATA)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--n", type=int, default=300, help="test images for the solver comparison")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    # ---- 1. data and a small trained network --------------------------------------------------
    print("== 1. Train a small MLP ==")
    x, y = load_mnist("train", data_dir=args.data_dir, flat=True)         # float32 in [0, 1], (60000, 784)
    x_test, y_test = load_mnist("test", data_dir=args.data_dir, flat=True)
    train_idx, val_idx = train_validation_split(len(x), 5000, seed=args.seed)
    t0 = time.perf_counter()
    net = train_small_mlp(x[train_idx], y[train_idx], x[val_idx], y[val_idx], args.epochs, args.seed)
    print(f"{net.describe()}: test error {100 * classification_error(net, x_test, y_test):.2f}% "
          f"after {args.epochs} epochs ({time.perf_counter() - t0:.0f} s)")

    # ---- 2. one image and its objective ---------------------------------------------------------
    i = 0                                              # the first test image (a 7)
    image, label = x_test[i], int(y_test[i])
    # targets: a random wrong label per image, from a seeded generator (reproducible)
    target = int(choose_targets(net, image[None], np.array([label]), "random", rng=args.seed)[0])
    show_objective(net, image, label, target, c=0.1)

    # ---- 3. and 4. what c does; the figure ---------------------------------------------------------
    cs = [0.03, 0.1, 0.3, 1.0, 3.0]
    results = c_sweep(net, image, label, target, cs)
    print("\n== 4. The adversarials and their noise, as a picture ==")
    path = os.path.join(args.out, "03_one_image_several_c.png")
    try:
        save_sweep_figure(path, image, label, cs, results)
        print(f"   figure: {path}")
    except RuntimeError as exc:                        # matplotlib is an optional extra
        print(f"   (no figure: {exc})")

    # ---- 5. the paper's protocol; 6. the two solvers on a few hundred images ---------------------
    print("\n== 5. The paper's constant c: the largest c with ≥ 99.5% error on 100 validation images ==")
    rows = np.random.default_rng(args.seed).permutation(len(val_idx))[:100]
    xs, ys = x[val_idx][rows], y[val_idx][rows]
    ts = choose_targets(net, xs, ys, "random", rng=args.seed + 1)
    c, _ = search_c(lambda c: batched_lbfgs_attack(net, xs, ys, ts, c), threshold=0.995, c0=1.0,
                    log=lambda line: print("   " + line))
    print(f"   chosen c = {c:.4g}")

    xa, ya = x_test[:args.n], y_test[:args.n]
    ta = choose_targets(net, xa, ya, "random", rng=args.seed + 2)
    batched = compare_solvers(net, xa, ya, ta, c)
    path = os.path.join(args.out, "03_figure2_style.png")
    try:
        from minidnn.attacks.figure import figure_from_result
        figure_from_result(path, batched, k=8, title=f"{net.describe()}, batched attack, c = {c:.3g}")
        print(f"   figure: {path} (originals, adversarials, noise: the paper's Figure 2 layout)")
    except RuntimeError as exc:
        print(f"   (no figure: {exc})")


if __name__ == "__main__":
    main()
