"""Section 3 of the paper on a tiny slice of MNIST: blur, noise injection, the autoencoders and the
stacked networks, end to end; an interrupted autoencoder training resumes to the same tables."""
import json
import os

import numpy
import pytest

import minidnn
from minidnn.attacks.batched import batched_lbfgs_attack
from minidnn.experiments import reproduce as rp
from minidnn.gradcheck import check_network
from minidnn.losses import SoftmaxCrossEntropy
from minidnn.networks import mlp, recovery_autoencoder, stack
from minidnn.training import Trainer

SECTION3 = ["table2", "figure1", "table3", "figure2", "table4"]



def tables(out):
    return {s: json.load(open(os.path.join(out, f"{s}.json"))) for s in ("table2", "figure1", "table3", "table4")}


def test_section3_end_to_end_and_a_resume_after_an_interrupted_autoencoder(tmp_path, mnist_dir, tiny_mode,
                                                                           monkeypatch):
    pytest.importorskip("matplotlib")        # the figures; the test extra installs it
    whole = str(tmp_path / "whole")
    rp.reproduce(whole, ["table1"] + SECTION3, mode="quick", data_dir=mnist_dir, progress=False,
                 models=["N100-100-10"])
    report = open(os.path.join(whole, "REPRODUCTION.md")).read()
    for heading in ("## Table 2", "## Figure 1", "## Table 3", "## Table 4", "## The paper's findings, checked"):
        assert heading in report
    assert os.path.getsize(os.path.join(whole, "figure1.png")) > 1000
    assert os.path.getsize(os.path.join(whole, "figure2-N100-100-10.png")) > 1000
    got = tables(whole)
    assert {(r["size"], r["rule"]) for r in got["table2"]} >= {(1, True), (5, True), (11, True)}
    assert [c["ae"] for c in got["table3"]["cells"]] == ["N100-100-10"]
    stacked = got["table3"]["stacked"][0]
    assert stacked["n"] == tiny_mode["stacked_eval_n"] and stacked["c"] > 0
    assert got["table4"][0]["sigma"] == 0.1 and "stacked_mean_distortion" in got["table4"][0]
    # the same images, the same models: no blur and no noise give Table 1's numbers back
    t1 = json.load(open(os.path.join(whole, "table1.json")))[0]
    size1 = next(r for r in got["table2"] if r["size"] == 1)
    assert size1["clean_error"] == t1["test_error"] and size1["adv_error"] == t1["error_rate"]
    for r in (r for r in got["figure1"] if r["sigma"] == 0):
        assert r["adv_error"] == t1["error_rate"]

    # The same run, killed after the first epoch of each autoencoder, then started again.
    interrupted = str(tmp_path / "interrupted")
    seen = set()
    real_write_log = Trainer._write_log

    def killed_after_first_epoch(self):
        real_write_log(self)
        name = os.path.basename(self.checkpoint or "")
        if name.startswith(("recovery-AE", "DAE")) and name not in seen:
            seen.add(name)
            raise KeyboardInterrupt(name)

    monkeypatch.setattr(Trainer, "_write_log", killed_after_first_epoch)
    for _ in range(3):
        try:
            rp.reproduce(interrupted, SECTION3, mode="quick", data_dir=mnist_dir, progress=False,
                         models=["N100-100-10"])
            break
        except KeyboardInterrupt:
            pass
    assert seen == {"recovery-AE-N100-100-10.npz", "DAE-s0.1.npz"}
    assert tables(interrupted) == got


def test_denoised_error_feeds_flat_reconstructions_to_an_image_model():
    """A ConvNet's adversarials are (N, 1, 28, 28); the autoencoder is flat; the error is the model's."""
    from minidnn.attacks.result import AttackResult
    from minidnn.experiments.recovery import denoised_error
    from minidnn.networks import build_model
    rng = numpy.random.default_rng(5)
    images = rng.random((6, 1, 28, 28)).astype(numpy.float32)
    convnet, ae = build_model("ConvNet", rng=0), recovery_autoencoder(rng=1)
    labels = numpy.arange(6) % 10
    adv = AttackResult.from_arrays(images, images, labels, labels, labels, numpy.zeros(6, int), numpy.ones(6, bool))
    expected = (convnet.predict(ae.predict_logits(images.reshape(6, 784)).reshape(6, 1, 28, 28)) != labels).mean()
    assert denoised_error(ae, convnet, adv) == expected


def test_the_stacked_autoencoder_and_classifier_passes_a_gradient_check_end_to_end():
    ae = recovery_autoencoder(n_in=16, sizes=(8, 4, 8), rng=0)
    net = stack(ae, mlp([6], "relu", n_in=16, n_out=3, rng=1))
    x = numpy.random.default_rng(2).random((5, 16))
    with minidnn.use_dtype("float64"):
        net.astype("float64")
        check_network(net, x, numpy.array([0, 1, 2, 0, 1]), SoftmaxCrossEntropy()).assert_ok()


def test_an_attack_on_the_stacked_network_keeps_the_box():
    ae = recovery_autoencoder(n_in=16, sizes=(8, 4, 8), rng=0)
    net = stack(ae, mlp([6], "sigmoid", n_in=16, n_out=3, rng=1))
    rng = numpy.random.default_rng(3)
    x = rng.random((12, 16)).astype(numpy.float32)
    x[:, :8] = rng.integers(0, 2, (12, 8))           # half the pixels on the box's faces, like MNIST's
    labels = net.predict(x)
    result = batched_lbfgs_attack(net, x, labels, (labels + 1) % 3, c=0.001, progress=False)
    assert result.adversarial.min() >= 0.0 and result.adversarial.max() <= 1.0
    # (a random 4-unit ReLU bottleneck is dead, so the gradient zero, for some inputs)
    assert (result.l2 > 0).mean() >= 0.5
    at_faces = (result.adversarial == 0) | (result.adversarial == 1)
    assert at_faces.sum() > 0


@pytest.mark.parametrize("scale", [1.0, 3.0])
def test_autoencoder_gain_is_the_rms_amplification_of_the_perturbation(scale):
    from minidnn.attacks.result import AttackResult
    from minidnn.experiments.recovery import autoencoder_gain
    from minidnn.layers import Dense
    from minidnn.networks import Sequential
    linear = Sequential([Dense(4, 4, rng=0)], (4,))
    linear.layers[0].params["W"].data = (scale * numpy.eye(4)).astype(numpy.float32)
    linear.layers[0].params["b"].data = numpy.full(4, 0.25, dtype=numpy.float32)
    rng = numpy.random.default_rng(0)
    x = rng.random((5, 4)).astype(numpy.float32) * 0.5
    x_adv = x + rng.normal(0, 0.05, x.shape).astype(numpy.float32)
    labels = numpy.zeros(5, int)
    adv = AttackResult.from_arrays(x, x_adv, labels, labels, labels + 1, numpy.zeros(5, int), numpy.ones(5, bool))
    assert autoencoder_gain(linear, adv) == pytest.approx(scale, rel=1e-5)
    failed = AttackResult.from_arrays(x, x_adv, labels, labels, labels, numpy.zeros(5, int), numpy.ones(5, bool))
    assert numpy.isnan(autoencoder_gain(linear, failed))           # no successful adversarial: no gain


def test_a_recipe_record_leaves_out_later_fields_at_their_defaults():
    """Models saved before Recipe had ``shift`` keep matching their cache keys (no retraining)."""
    from dataclasses import asdict, replace
    from minidnn.experiments.baselines import Recipe, recipe_record
    from minidnn.experiments.recovery import AE_RECIPE
    before = {k: v for k, v in asdict(AE_RECIPE).items() if k != "shift"}       # as older versions saved it
    assert recipe_record(AE_RECIPE) == before
    assert recipe_record(replace(Recipe(), shift=2))["shift"] == 2
