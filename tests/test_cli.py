"""The ``minidnn`` command: gradcheck, info, and a quick train → evaluate round trip on MNIST."""
import json
import os
import subprocess
import sys

import pytest

from minidnn.layers import LAYER_TYPES

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def minidnn(*args, cwd=REPO, timeout=300):
    env = {**os.environ, "PYTHONPATH": REPO, "OPENBLAS_NUM_THREADS": "1"}    # see tests/support/blas.py
    env.pop("MINIDNN_BACKEND", None)
    return subprocess.run([sys.executable, "-m", "minidnn", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout)


def test_gradcheck_prints_a_row_per_layer_kind_and_passes():
    result = minidnn("gradcheck")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {line.split()[0]: line.split()[-1] for line in result.stdout.splitlines()[1:] if line.split()}
    # GaussianNoise has no row yet (its backward is the identity; tests/layers/test_noise.py checks it)
    kinds = set(LAYER_TYPES) - {"GaussianNoise"}
    for name in kinds | {"SoftmaxCrossEntropy", "BinaryCrossEntropy", "MeanSquaredError", "network:"}:
        assert rows.get(name) == "ok", f"no passing row for {name}:\n{result.stdout}"
    assert "criterion per entry" in result.stdout


def test_info_names_the_backend_and_versions():
    result = minidnn("info")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("minidnn ") and "backend: numpy, default dtype: float32" in result.stdout


def test_train_then_evaluate(tmp_path, mnist_dir):
    out = tmp_path / "runs" / "mlp.npz"
    result = minidnn("train", "N100-100-10", "--epochs", 1, "--limit", 2000, "--out", out, "--quiet",
                     "--data-dir", mnist_dir, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "N100-100-10: best validation error" in result.stdout and str(out) in result.stdout
    log = out.with_name("mlp.log.jsonl").read_text().splitlines()
    assert len(log) == 1 and json.loads(log[0])["epoch"] == 1

    result = minidnn("evaluate", out, "--json", "--data-dir", mnist_dir, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    errors = json.loads(result.stdout)                                  # JSON alone on stdout
    assert errors["checkpoint"] == str(out)
    assert all(0 <= errors[split] < 0.5 for split in ("train", "val", "test"))   # one short epoch: far from chance


@pytest.mark.parametrize("content", [b"not a checkpoint", None])
def test_evaluate_a_bad_checkpoint_exits_2_naming_the_file(tmp_path, content):
    path = tmp_path / "broken.npz"
    if content is not None:
        path.write_bytes(content)
    result = minidnn("evaluate", path, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("minidnn: error:") and str(path) in result.stderr
    assert "Traceback" not in result.stderr


def test_train_with_shifted_images_records_the_shift(tmp_path, mnist_dir):
    from minidnn.checkpoint import load_model
    out = tmp_path / "shifted.npz"
    result = minidnn("train", "N100-100-10", "--epochs", 1, "--limit", 500, "--shift", 2, "--out", out, "--quiet",
                     "--data-dir", mnist_dir, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    _, meta, _ = load_model(out, return_all=True)
    assert meta["metadata"]["recipe"]["shift"] == 2
    assert meta["training"]["settings"]["augment"] == {"type": "RandomShift", "max_shift": 2, "image_shape": [1, 28, 28]}


def test_a_negative_shift_is_refused_before_any_work(tmp_path):
    result = minidnn("train", "N100-100-10", "--shift", "-1", cwd=tmp_path)
    assert result.returncode == 2 and "--shift: expected a whole number of pixels" in result.stderr


@pytest.mark.parametrize("args, message", [
    (("train", "N100-100-10", "--epochs", "0"), "argument --epochs: expected a whole number ≥ 1, got '0'"),
    (("train", "N100-100-10", "--limit", "-5"), "argument --limit: expected a whole number ≥ 1"),
    (("train", "N100-100-10", "--batch-size", "0"), "argument --batch-size: expected a whole number ≥ 1"),
    (("train", "N100-100-10", "--contractive", "-1"), "--contractive: expected λ or λ1,λ2,... (numbers ≥ 0)"),
    (("train", "N100-100-10", "--schedule", "step:0:0.5"), "a step schedule needs EVERY ≥ 1 epoch"),
    (("train", "N1"), "unknown model 'N1'; choose one of N100-100-10"),
    (("attack", "x.npz", "--c", "abc"), "argument --c: expected 'auto' or a number > 0, got 'abc'"),
    (("attack", "x.npz", "--n", "0"), "argument --n: expected a whole number ≥ 1"),
    (("attack", "x.npz", "--search-n", "0"), "argument --search-n: expected a whole number ≥ 1"),
    (("attack", "x.npz", "--threshold", "1.5"), "argument --threshold: expected a share in (0, 1]"),
    (("attack", "x.npz", "--chunk", "0"), "argument --chunk: expected a whole number ≥ 1"),
])
def test_bad_options_are_refused_before_any_work_naming_the_option(tmp_path, args, message):
    result = minidnn(*args, cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "checkpoints").exists()


def test_a_limited_run_does_not_take_the_full_runs_checkpoint(tmp_path, mnist_dir):
    result = minidnn("train", "N100-100-10", "--epochs", 1, "--limit", 300, "--quiet", "--data-dir", mnist_dir,
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "checkpoints" / "N100-100-10-seed0-limit300.npz").exists()
    assert not (tmp_path / "checkpoints" / "N100-100-10-seed0.npz").exists()
    again = minidnn("train", "N100-100-10", "--epochs", 1, "--limit", 300, "--quiet", "--data-dir", mnist_dir,
                    cwd=tmp_path)
    assert again.returncode == 0 and "checkpoints/N100-100-10-seed0-limit300.npz exists: continuing" in again.stdout


@pytest.mark.parametrize("args, missing, message", [
    (("--figure", "f.png"), "matplotlib", "--figure needs matplotlib, which is not installed: pip install 'minidnn[plot]'"),
    (("--method", "reference"), "scipy", "--method reference needs scipy, which is not installed: "
                                         "pip install 'minidnn[attacks]'"),
])
def test_a_missing_optional_package_is_named_before_the_attack(tmp_path, monkeypatch, capsys, args, missing, message):
    import importlib.util
    from minidnn.cli import main
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == missing else find_spec(name, *a))
    assert main(["attack", str(tmp_path / "never-read.npz"), *args]) == 2
    assert message in capsys.readouterr().err


def test_the_split_seed_is_kept_and_a_resume_on_another_split_refused(tmp_path, mnist_dir):
    from minidnn.checkpoint import load_model
    from minidnn.cli import split_seed
    args = ("train", "N100-100-10", "--epochs", 1, "--limit", 300, "--quiet", "--data-dir", mnist_dir, "--seed", 1)
    result = minidnn(*args, "--split-seed", 0, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    path = tmp_path / "checkpoints" / "N100-100-10-seed1-split0-limit300.npz"
    _, meta, _ = load_model(path, return_all=True)
    assert split_seed(meta) == 0 and meta["metadata"]["seed"] == 1
    again = minidnn(*args, "--out", path, cwd=tmp_path)                 # the seed-1 split this time
    assert again.returncode == 2 and "other settings" in again.stderr and "split_seed" in again.stderr
