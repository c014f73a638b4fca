"""AttackResult: the paper's measures, and a file format that round-trips without pickle."""
import json
import os
import zipfile

import numpy
import pytest

from minidnn.attacks import AttackResult
from minidnn.attacks.result import ARRAYS
from minidnn.checkpoint import CheckpointError


@pytest.fixture
def result():
    """Four 2×2 "images": two successes (predicted ≠ label), one of which hits its target."""
    original = numpy.array([[[0.0, 0.5], [1.0, 0.25]]] * 4)
    change = numpy.array([[[0.1, 0.0], [0.0, 0.0]],       # RMS sqrt(0.01/4) = 0.05
                          [[0.0, 0.2], [-0.2, 0.2]],      # RMS sqrt(0.12/4)
                          [[0.0, 0.0], [0.0, 0.0]],       # unchanged
                          [[0.3, 0.3], [-0.3, 0.3]]])     # RMS 0.3
    return AttackResult.from_arrays(original, original + change, target=numpy.array([3, 5, 0, 7]),
                                    label=numpy.array([1, 2, 1, 4]), predicted=numpy.array([3, 2, 1, 0]),
                                    iterations=numpy.array([10, 20, 0, 5]),
                                    converged=numpy.array([True, False, True, True]),
                                    meta={"method": "batched", "c": 0.25})


def test_distortion_is_the_root_mean_square_pixel_change(result):
    diff = (result.adversarial.astype(numpy.float64) - result.original).reshape(4, -1)
    numpy.testing.assert_allclose(result.distortion, numpy.sqrt((diff ** 2).mean(axis=1)), rtol=1e-12)
    numpy.testing.assert_allclose(result.distortion, [0.05, numpy.sqrt(0.03), 0.0, 0.3], rtol=1e-6)
    numpy.testing.assert_allclose(result.l2, numpy.sqrt((diff ** 2).sum(axis=1)), rtol=1e-12)


def test_error_rate_over_all_and_mean_distortion_over_successes(result):
    numpy.testing.assert_array_equal(result.success, [True, False, False, True])
    numpy.testing.assert_array_equal(result.hit_target, [True, False, False, False])
    assert result.error_rate == pytest.approx(0.5)
    assert result.mean_distortion == pytest.approx((0.05 + 0.3) / 2, rel=1e-6)
    summary = result.summary()
    assert summary["n"] == 4 and summary["target_hit_rate"] == pytest.approx(0.25)
    assert summary["mean_iterations"] == pytest.approx(8.75)


def test_no_success_means_nan_distortion_not_zero(result):
    none = AttackResult.from_arrays(result.original, result.adversarial, result.target, result.label,
                                    result.label, result.iterations, result.converged)
    assert none.error_rate == 0.0
    assert numpy.isnan(none.mean_distortion)


def test_save_load_round_trip_without_pickle(result, tmp_path):
    path = tmp_path / "adv.npz"
    result.save(path)
    with numpy.load(path, allow_pickle=False) as data:       # plain arrays only
        assert set(data.files) == set(ARRAYS) | {"meta.json"}
        meta = json.loads(data["meta.json"].tobytes().decode())
    assert meta["c"] == 0.25 and meta["error_rate"] == pytest.approx(0.5)
    loaded = AttackResult.load(path)
    for name in ARRAYS:
        a, b = getattr(result, name), getattr(loaded, name)
        assert a.dtype == b.dtype, name
        numpy.testing.assert_array_equal(a, b, err_msg=name)
    assert loaded.meta["method"] == "batched" and loaded.meta["c"] == 0.25
    assert loaded.mean_distortion == result.mean_distortion
    assert os.listdir(tmp_path) == ["adv.npz"]                # no temporary file left behind


def test_save_is_atomic_a_failed_write_keeps_the_old_file(result, tmp_path, monkeypatch):
    path = tmp_path / "adv.npz"
    result.save(path)
    before = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")
    monkeypatch.setattr(numpy, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        result.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["adv.npz"]


def test_load_of_a_truncated_file_is_a_clear_error(result, tmp_path):
    path = tmp_path / "adv.npz"
    result.save(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated or not an attack file"):
        AttackResult.load(path)
    with pytest.raises(FileNotFoundError):
        AttackResult.load(tmp_path / "missing.npz")


def test_load_refuses_pickled_arrays(tmp_path):
    """An .npz holding an object array (which would need pickle) is refused, not executed."""
    path = tmp_path / "evil.npz"
    numpy.savez(path, original=numpy.array([{"a": 1}], dtype=object))
    with zipfile.ZipFile(path) as z:
        assert z.namelist() == ["original.npy"]
    with pytest.raises(CheckpointError):
        AttackResult.load(path)


def test_concatenate_keeps_every_record_in_order(result):
    both = AttackResult.concatenate([result, result], meta={"n": 8})
    assert len(both) == 8 and both.meta == {"n": 8}
    numpy.testing.assert_array_equal(both.predicted, numpy.tile(result.predicted, 2))
    assert both.error_rate == result.error_rate
