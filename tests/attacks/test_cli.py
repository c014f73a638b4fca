"""`minidnn attack` end to end on a tiny checkpoint trained here (needs MNIST; skipped without it)."""
import os
import pathlib
import subprocess
import sys

import numpy
import pytest

from minidnn import cli
from minidnn.attacks import AttackResult
from minidnn.checkpoint import save_model

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def checkpoint(trained_mlp, tmp_path_factory):
    """The small trained MLP of conftest.py, saved as a model checkpoint (seed 0 in its metadata)."""
    path = tmp_path_factory.mktemp("cli") / "mlp.npz"
    save_model(path, trained_mlp.net, metadata={"seed": 0, "model": "MLP-64"})
    return path


def test_attack_command_writes_the_set_and_the_figure(checkpoint, mnist_dir_path, tmp_path):
    pytest.importorskip("matplotlib")
    out, figure = tmp_path / "adv.npz", tmp_path / "adv.png"
    env = {k: v for k, v in os.environ.items() if k != "MINIDNN_BACKEND"}
    env["OPENBLAS_NUM_THREADS"] = "1"          # small products: one thread is fastest on a busy machine
    done = subprocess.run(
        [sys.executable, "-m", "minidnn", "attack", str(checkpoint), "--n", "20", "--c", "1.0",
         "--method", "batched", "--out", str(out), "--figure", str(figure), "--data-dir", mnist_dir_path,
         "--quiet"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "adversarial error" in done.stdout and "c = 1:" in done.stdout, done.stdout
    result = AttackResult.load(out)
    assert len(result) == 20
    assert result.meta["c"] == 1.0 and result.meta["method"] == "batched" and result.meta["split"] == "test"
    assert result.adversarial.min() >= 0 and result.adversarial.max() <= 1
    assert (result.target != result.label).all()
    with numpy.load(out, allow_pickle=False) as data:
        assert "adversarial" in data.files
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_attack_command_refuses_c_zero_clearly(tmp_path, capsys):
    """--c 0 stops before any work (here before the checkpoint is even looked for) with a one-line
    message that names the option."""
    argv = ["attack", str(tmp_path / "model.npz"), "--n", "5", "--c", "0", "--out", str(tmp_path / "adv.npz"),
            "--quiet", "--backend", "numpy"]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert "argument --c: expected 'auto' or a number > 0, got '0'" in capsys.readouterr().err
    assert not (tmp_path / "adv.npz").exists()
