"""A PNG grid in the style of the paper's Figure 2: originals, adversarials, their noise."""
import numpy


def noise_image(diff):
    """Perturbation made visible: centred at grey 0.5, scaled so the largest |r| reaches 0 or 1."""
    scale = numpy.abs(diff).max()
    return 0.5 + 0.5 * diff / scale if scale > 0 else numpy.full_like(diff, 0.5)


def attack_figure(path, columns, title=None):
    """columns: list of (heading, images (k, 28, 28), captions (k,)) drawn top to bottom per example.

    Writes ``path`` (PNG, atomically). Needs matplotlib (the 'plot' extra).
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise RuntimeError("figures need matplotlib: pip install 'minidnn[plot]'") from exc
    from ..files import atomic_write
    k = len(columns[0][1])
    fig, axes = plt.subplots(len(columns), k, figsize=(1.3 * k, 1.45 * len(columns)), squeeze=False)
    for row, (heading, images, captions) in enumerate(columns):
        for j in range(k):
            ax = axes[row, j]
            ax.imshow(numpy.asarray(images[j]).reshape(28, 28), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(captions[j], fontsize=7)
            if j == 0:
                ax.set_ylabel(heading, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)


def figure_from_result(path, result, k=8, title=None):
    """Figure 2 layout from one AttackResult: original, adversarial, noise, for k examples."""
    idx = numpy.arange(min(k, len(result)))
    orig, adv = result.original[idx].reshape(-1, 28, 28), result.adversarial[idx].reshape(-1, 28, 28)
    attack_figure(path, [
        ("original", orig, [f"label {result.label[i]}" for i in idx]),
        ("adversarial", adv, [f"pred {result.predicted[i]}" for i in idx]),
        ("noise", [noise_image(a - o) for a, o in zip(adv, orig)],
         [f"d={result.distortion[i]:.3f}" for i in idx]),
    ], title)
