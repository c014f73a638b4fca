"""The paper's figures as PNGs: Figure 1 (error against test-time noise σ), Figures 2 and 3
(originals, adversarials and their noise for two networks side by side). Needs matplotlib."""
import numpy

from ..attacks.figure import attack_figure, noise_image
from ..files import atomic_write

COLORS = {"N100-100-10": "tab:blue", "N200-200-10": "tab:orange", "AE400-10": "tab:green", "ConvNet": "tab:red"}


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise RuntimeError("figures need matplotlib: pip install 'minidnn[plot]'") from exc
    return plt


def figure1_png(path, rows, note=""):
    """Clean error (left) and adversarial error (right) against σ; solid L1, dashed L*."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, title in ((axes[0], "clean_error", "clean test data"), (axes[1], "adv_error", "adversarial test data")):
        for model in dict.fromkeys(r["model"] for r in rows):
            for where, style in (("input", "-"), ("all", "--")):
                pts = sorted((r["sigma"], 100 * r[key]) for r in rows if r["model"] == model and r["where"] == where)
                if pts:
                    ax.plot(*zip(*pts), style, marker=".", color=COLORS.get(model),
                            label=f"{model} {'L1' if where == 'input' else 'L*'}")
        ax.set_xlabel("σ of test-time Gaussian noise"), ax.set_ylabel("error %"), ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    fig.suptitle("Figure 1: noise injection, softmax averaged over noisy passes" + (f"\n{note}" if note else ""),
                 fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)


def side_by_side_png(path, first, second, names, k=8, title=None):
    """Figure 2/3 layout for the same k test images attacked in two networks (AttackResults
    ``first`` and ``second``): original; adversarial and noise for each network."""
    idx = numpy.arange(min(k, len(first), len(second)))
    if not numpy.array_equal(first.original[idx].reshape(len(idx), -1), second.original[idx].reshape(len(idx), -1)):
        raise ValueError("side_by_side_png: the two attack results start with different images")
    orig = first.original[idx].reshape(-1, 28, 28)
    columns = [("original", orig, [f"label {first.label[i]}" for i in idx])]
    for name, res in zip(names, (first, second)):
        adv = res.adversarial[idx].reshape(-1, 28, 28)
        columns += [(f"adv. {name}", adv, [f"pred {res.predicted[i]}" for i in idx]),
                    (f"noise {name}", [noise_image(a - o) for a, o in zip(adv, orig)],
                     [f"d={res.distortion[i]:.3f}" for i in idx])]
    attack_figure(path, columns, title)
