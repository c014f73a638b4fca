"""Why our adversarial distortions are smaller than the paper's: weight decay (about 10 minutes on a CPU).

    MINIDNN_DATA=/path/to/mnist python examples/05_weight_decay_vs_distortion.py

The recipes in minidnn/experiments/baselines.py choose the weight decay λ on the validation
split, for clean error: N200-200-10 gets λ = 1e-5 and N100-100-10 λ = 3e-4, where the paper
says λ = 1e-3. Attacked with the paper's protocol (c searched for ≥ 99.5% error on 500
validation images, then 1,000 test images), the λ = 1e-3 models need larger perturbations:
smaller weights make a smoother function of the input. This script trains both readings
(seed 0, same recipe otherwise) and prints validation error, c, adversarial error and mean
distortion for each, and the adversarial error that remains after a Gaussian blur of size 5
and 11 (Table 2): the larger-distortion adversarials of the λ = 1e-3 models survive blur far more
often, as the paper's do. Output goes to examples_output/weight_decay/ and is reused when present.
"""
import os
from dataclasses import replace

from minidnn import backend
from minidnn.attacks.result import AttackResult
from minidnn.networks import blurred

from minidnn.experiments.adversarial import ATTACK_ALGORITHM, protocol_eval
from minidnn.experiments.baselines import RECIPES, mnist_splits, train_model

OUT = os.path.join("examples_output", "weight_decay")


def main():
    data = mnist_splits("flat", seed=0)
    print(f"{'model':<13}{'λ':>8}{'val err':>9}{'c':>8}{'adv err':>9}{'distortion':>12}{'blur 5':>8}{'blur 11':>8}")
    for model, lams in (("N200-200-10", (1e-3, 1e-5)), ("N100-100-10", (1e-3, 3e-4))):
        for lam in lams:
            name = f"{model}-wd{lam:g}"
            net, info = train_model(model, replace(RECIPES[model], weight_decay=lam), seed=0, data=data,
                                    out=os.path.join(OUT, name + ".npz"), progress=False)
            s = protocol_eval(net, data, os.path.join(OUT, name), search_n=500, eval_n=1000, progress=False,
                              algorithm=ATTACK_ALGORITHM)
            adv = AttackResult.load(os.path.join(OUT, name, "adv-test.npz"))
            x_adv = backend.as_array(adv.adversarial)
            blur = [100 * (backend.to_numpy(blurred(net, size).predict(x_adv)) != adv.label).mean() for size in (5, 11)]
            print(f"{model:<13}{lam:>8g}{100 * info['val_error']:>8.2f}%{s['c']:>8.3f}"
                  f"{100 * s['error_rate']:>8.1f}%{s['mean_distortion']:>12.4f}{blur[0]:>7.1f}%{blur[1]:>7.1f}%",
                  flush=True)


if __name__ == "__main__":
    main()
