"""`minidnn reproduce` end to end on a tiny slice of MNIST: tables written, artifacts reused on a rerun."""
import json
import os

import pytest

from minidnn.experiments import reproduce as rp




def test_table1_and_table5_then_a_rerun_reuses_everything(tmp_path, mnist_dir, tiny_mode):
    out = str(tmp_path / "results")
    first = rp.reproduce(out, ["table1", "table5"], mode="quick", data_dir=mnist_dir, progress=False,
                         models=["N100-100-10"])
    report = open(os.path.join(out, "REPRODUCTION.md")).read()
    assert "quick mode" in report and "## Table 1" in report and "## Table 5" in report
    row = first["table1"][0]
    assert row["model"] == "N100-100-10" and 0 <= row["test_error"] <= 1 and row["n"] == tiny_mode["eval_n"]
    assert row["c"] > 0 and 0 <= row["error_rate"] <= 1
    variants = sorted(r["variant"] for r in first["table5"])
    assert variants == ["dcn", "orig"]

    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(out) for f in fs
                   if f.endswith((".npz", "summary.json")))
    stamps = {f: os.stat(f).st_mtime_ns for f in files}
    second = rp.reproduce(out, ["table1", "table5"], mode="quick", data_dir=mnist_dir, progress=False,
                          models=["N100-100-10"])
    assert second["table1"] == first["table1"] and second["table5"] == first["table5"]
    assert {f: os.stat(f).st_mtime_ns for f in files} == stamps          # nothing trained or attacked again
    assert json.load(open(os.path.join(out, "table1.json"))) == first["table1"]


def test_an_interrupted_attack_resumes_to_the_same_result(tmp_path, mnist_dir, tiny_mode):
    """Delete the finished summary and the test-set adversarials: the rerun rebuilds them identically."""
    out = str(tmp_path / "results")
    first = rp.reproduce(out, ["table1"], mode="quick", data_dir=mnist_dir, progress=False,
                         models=["N100-100-10"])["table1"]
    attack_dir = os.path.join(out, "attacks", "N100-100-10-orig-s0")
    os.remove(os.path.join(attack_dir, "summary.json"))
    os.remove(os.path.join(attack_dir, "adv-test.npz"))
    again = rp.reproduce(out, ["table1"], mode="quick", data_dir=mnist_dir, progress=False,
                         models=["N100-100-10"])["table1"]
    assert again == first


def test_unknown_stage_and_model_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown models"):
        rp.reproduce(str(tmp_path), ["table1"], mode="quick", models=["LeNet"])
    with pytest.raises(ValueError, match="unknown stage"):
        rp.reproduce(str(tmp_path), ["table9"], mode="quick")


def test_a_run_for_one_model_keeps_the_rows_of_the_others(tmp_path, mnist_dir, tiny_mode):
    out = str(tmp_path / "results")
    rp.reproduce(out, ["table1"], mode="quick", data_dir=mnist_dir, progress=False, models=["N200-200-10"])
    rp.reproduce(out, ["table1"], mode="quick", data_dir=mnist_dir, progress=False, models=["N100-100-10"])
    rows = json.load(open(os.path.join(out, "table1.json")))
    assert [r["model"] for r in rows] == ["N100-100-10", "N200-200-10"]     # the paper's order
    report = open(os.path.join(out, "REPRODUCTION.md")).read()
    assert "| N100-100-10 |" in report and "| N200-200-10 |" in report


def test_a_lambda_whose_training_diverges_fails_the_rule_and_the_next_is_tried(tmp_path, monkeypatch, tiny_mode):
    run = rp.Run(str(tmp_path), "quick", progress=False)
    trained = []

    def fake_model(model, variant="orig", seed=0, lam=None):
        trained.append(lam)
        if lam > 1:
            raise FloatingPointError("training loss became inf at epoch 2")
        return None, {"val_error": 0.05 if lam > 0.5 else 0.01}

    monkeypatch.setattr(run, "model", fake_model)
    assert run.choose_lambda("N100-100-10", "global", (0.1, 0.3, 1.0, 3.0), limit_error=0.02) == 0.3
    assert trained == [3.0, 1.0, 0.3]                    # largest first, stopping at the first that passes
    saved = json.load(open(tmp_path / "lambda-N100-100-10-global.json"))
    assert saved["sweep"][0]["diverged"] and saved["sweep"][0]["val_error"] == 1.0


def test_an_unreadable_model_file_is_named_and_kept(tmp_path, mnist_dir, tiny_mode):
    """A model file reproduce cannot read (cut short, or from another version) stops the run with its name
    and what to do; it is never deleted."""
    from minidnn.checkpoint import CheckpointError
    run = rp.Run(str(tmp_path), "quick", data_dir=mnist_dir, progress=False)
    os.makedirs(tmp_path / "models")
    broken = tmp_path / "models" / "N100-100-10-orig-s0.npz"
    broken.write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(CheckpointError, match=f"move or delete {broken} to train this model again"):
        run.model("N100-100-10")
    assert broken.read_bytes() == b"PK\x03\x04 cut short"


def test_a_folder_holds_one_mode_and_refuses_the_other(tmp_path):
    """A full run in a quick run's folder would take its 2-epoch models for finished ones (and back)."""
    out = str(tmp_path / "results")
    rp.Run(out, "quick", progress=False)
    assert json.load(open(os.path.join(out, "mode.json"))) == {"mode": "quick"}
    rp.Run(out, "quick", progress=False)                       # the same mode resumes
    with pytest.raises(ValueError, match=r"holds a quick run.*choose another results folder"):
        rp.Run(out, "full", progress=False)
    other = str(tmp_path / "other")
    rp.Run(other, "full", progress=False)
    with pytest.raises(ValueError, match="holds a full run"):
        rp.reproduce(other, ["table1"], mode="quick")


def test_a_folder_from_before_mode_json_is_read_by_its_report_or_refused(tmp_path):
    """Folders written by earlier versions have no mode.json: REPRODUCTION.md's title says the mode;
    without one, results of unknown mode are refused, and so is a mode.json that is not a record."""
    old_quick = tmp_path / "old-quick"
    (old_quick / "models").mkdir(parents=True)
    (old_quick / "REPRODUCTION.md").write_text("# Reproduction of Gu & Rigazio (2014): quick mode\n\n- mode: **quick**\n")
    with pytest.raises(ValueError, match="holds a quick run"):
        rp.Run(str(old_quick), "full", progress=False)
    rp.Run(str(old_quick), "quick", progress=False)
    assert json.load(open(old_quick / "mode.json")) == {"mode": "quick"}

    unknown = tmp_path / "unknown"
    (unknown / "attacks").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"no record of their mode.*mode\.json"):
        rp.Run(str(unknown), "full", progress=False)
    assert not (unknown / "mode.json").exists()

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "mode.json").write_text('{"mode": "ful')
    with pytest.raises(ValueError, match="is not a mode record"):
        rp.Run(str(broken), "full", progress=False)
