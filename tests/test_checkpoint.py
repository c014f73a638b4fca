"""Checkpoints: round trips, architecture checks, damaged files, no pickle, atomic writes."""
import json
import os
import re

import numpy
import pytest

from minidnn.checkpoint import CheckpointError, load_arrays, load_model, save_arrays, save_model
from minidnn.files import atomic_write
from minidnn.layers import Conv2D, Dense, Flatten, GaussianNoise, MaxPool2D, ReLU
from minidnn.networks import Sequential


def convnet():
    return Sequential([GaussianNoise(0.1, rng=4), Conv2D(1, 2, (3, 2), stride=(1, 2), padding=1, rng=0), ReLU(),
                       MaxPool2D(2), Flatten(), Dense(8, 3, rng=1)], (1, 5, 6), "tiny convnet")


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "model.npz"
    net = convnet()
    net.layers[0].forward(numpy.zeros((2, 1, 5, 6), numpy.float32), train=True)     # advance the noise
    save_model(path, net, metadata={"seed": 3, "note": "ünïcode"}, extra_arrays={"extra/a": numpy.arange(3)},
               extra_meta={"training": {"epoch": 2}})
    return path, net


def test_round_trip_restores_architecture_weights_states_and_metadata(saved):
    path, net = saved
    loaded, meta, arrays = load_model(path, return_all=True)
    assert loaded.spec() == net.spec() and loaded.name == "tiny convnet"
    for name, p in net.named_params().items():
        q = loaded.named_params()[name]
        assert q.data.dtype == p.data.dtype == numpy.float32 and numpy.array_equal(q.data, p.data)
    assert meta["metadata"] == {"seed": 3, "note": "ünïcode"} and meta["training"] == {"epoch": 2}
    numpy.testing.assert_array_equal(arrays["extra/a"], [0, 1, 2])
    x = numpy.zeros((2, 1, 5, 6), numpy.float32)
    numpy.testing.assert_array_equal(loaded.layers[0].forward(x, train=True), net.layers[0].forward(x, train=True))
    numpy.testing.assert_array_equal(loaded.forward(x + 1), net.forward(x + 1))


def test_loading_into_the_same_architecture_replaces_the_weights(saved):
    path, net = saved
    other = convnet()
    for p in other.named_params().values():
        p.data = p.data + 1
    assert load_model(path, into=other) is other
    for name, p in net.named_params().items():
        numpy.testing.assert_array_equal(other.named_params()[name].data, p.data)


@pytest.mark.parametrize("other, culprit", [
    (Sequential([Dense(30, 3)], (30,)), r"input \(30,\)"),
    (Sequential([GaussianNoise(0.1), Conv2D(1, 4, (3, 2), stride=(1, 2), padding=1), ReLU(), MaxPool2D(2), Flatten(),
                 Dense(16, 3)], (1, 5, 6)), r"Conv2D\(1,4\)"),
])
def test_loading_into_another_architecture_names_the_mismatch(saved, other, culprit):
    path, _ = saved
    with pytest.raises(CheckpointError, match="another architecture") as info:
        load_model(path, into=other)
    assert str(path) in str(info.value) and "tiny convnet" in str(info.value)
    assert re.search(culprit, str(info.value))


def test_missing_or_misshapen_parameters_are_named(tmp_path):
    net = Sequential([Dense(4, 3, rng=0)], (4,), "d")
    save_arrays(tmp_path / "missing.npz", {"param/0.W": numpy.zeros((4, 3), numpy.float32)}, {"spec": net.spec()})
    with pytest.raises(CheckpointError, match=r"missing parameters \['0.b'\]"):
        load_model(tmp_path / "missing.npz")
    save_arrays(tmp_path / "shape.npz", {"param/0.W": numpy.zeros((3, 4), numpy.float32),
                                         "param/0.b": numpy.zeros(3, numpy.float32)}, {"spec": net.spec()})
    with pytest.raises(CheckpointError, match=r"parameter '0.W' has shape \(3, 4\), the network expects \(4, 3\)"):
        load_model(tmp_path / "shape.npz")


@pytest.mark.parametrize("keep", [0, 10, 0.5, -1, -22])
def test_a_truncated_file_is_a_checkpoint_error_naming_it(saved, keep):
    path, _ = saved
    data = path.read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else keep % len(data) if keep < 0 else keep
    path.write_bytes(data[:cut])
    with pytest.raises(CheckpointError, match="truncated") as info:
        load_model(path)
    assert str(path) in str(info.value)


def test_a_corrupted_byte_inside_an_array_is_caught(saved):
    path, _ = saved
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("content", [b"\x00garbage" * 100, b"\x93NUMPY not really", b"PK\x03\x04 almost a zip"])
def test_garbage_bytes_are_a_checkpoint_error_naming_the_file(tmp_path, content):
    path = tmp_path / "garbage.npz"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    assert str(path) in str(info.value)


def test_a_plain_npy_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "weights.npy"
    numpy.save(path, numpy.zeros(3))
    with pytest.raises(CheckpointError, match="not an .npz") as info:
        load_model(path)
    assert str(path) in str(info.value)


def test_a_missing_file_or_a_directory(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist") as info:
        load_model(tmp_path / "nowhere.npz")
    assert str(tmp_path / "nowhere.npz") in str(info.value)
    with pytest.raises(CheckpointError, match="is a directory"):
        load_model(tmp_path)


def test_an_npz_without_meta_json(tmp_path):
    path = tmp_path / "foreign.npz"
    numpy.savez(path, weights=numpy.zeros(3))
    with pytest.raises(CheckpointError, match="no meta.json") as info:
        load_model(path)
    assert str(path) in str(info.value)


def test_a_bad_meta_json_or_format(tmp_path):
    path = tmp_path / "bad.npz"
    numpy.savez(path, **{"meta.json": numpy.frombuffer(b"{not json", numpy.uint8)})
    with pytest.raises(CheckpointError, match="corrupt meta.json"):
        load_model(path)
    numpy.savez(path, **{"meta.json": numpy.frombuffer(json.dumps({"format": "other", "version": 1}).encode(),
                                                         numpy.uint8)})
    with pytest.raises(CheckpointError, match="unsupported checkpoint format 'other'"):
        load_model(path)
    save_arrays(path, {}, {"not": "a model"})
    with pytest.raises(CheckpointError, match="no network spec"):
        load_model(path)
    save_arrays(path, {}, {"spec": {"name": None, "input_shape": [3], "layers": [{"type": "Nope"}]}})
    with pytest.raises(CheckpointError, match="invalid network spec: unknown layer type 'Nope'"):
        load_model(path)


class Payload:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_object_arrays_are_refused_and_never_run(saved):
    path, net = saved
    marker = path.parent / "pwned"
    arrays = {"meta.json": numpy.frombuffer(json.dumps({"format": "minidnn-checkpoint", "version": 1,
                                                         "spec": net.spec()}).encode(), numpy.uint8),
              "param/5.W": numpy.array([Payload(str(marker))], dtype=object)}
    numpy.savez(path, **arrays)
    with pytest.raises(CheckpointError, match=r"entry 'param/5.W' is unreadable.*never unpickled") as info:
        load_model(path)
    assert str(path) in str(info.value) and "allow_pickle" in str(info.value)
    assert not marker.exists()


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(b"old contents")

    def failing(f):
        f.write(b"half of the new")
        raise OSError("disk full")
    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, failing)
    assert path.read_bytes() == b"old contents" and os.listdir(tmp_path) == ["model.npz"]
    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, lambda f: (_ for _ in ()).throw(KeyboardInterrupt()))
    assert os.listdir(tmp_path) == ["model.npz"]
    atomic_write(path, lambda f: f.write(b"new"))
    assert path.read_bytes() == b"new" and os.listdir(tmp_path) == ["model.npz"]


def test_save_creates_directories_and_keeps_dtypes(tmp_path):
    path = tmp_path / "a" / "b" / "arrays.npz"
    save_arrays(path, {"x": numpy.arange(4, dtype=numpy.int16), "y": numpy.ones((2, 2))}, {"k": [1, 2]})
    meta, arrays = load_arrays(path)
    assert meta["k"] == [1, 2] and meta["format"] == "minidnn-checkpoint"
    assert arrays["x"].dtype == numpy.int16 and arrays["y"].dtype == numpy.float64


def test_written_files_get_the_umasks_mode_not_the_temp_files(tmp_path, monkeypatch):
    """mkstemp makes 0o600 files; a new file gets what open() would give it, a replaced one keeps its mode."""
    import os
    from minidnn import files
    monkeypatch.setattr(files, "_UMASK", 0o022)
    atomic_write(tmp_path / "a.bin", lambda f: f.write(b"x"))
    monkeypatch.setattr(files, "_UMASK", 0o077)
    atomic_write(tmp_path / "b.bin", lambda f: f.write(b"x"))
    assert os.stat(tmp_path / "a.bin").st_mode & 0o777 == 0o644
    assert os.stat(tmp_path / "b.bin").st_mode & 0o777 == 0o600
    os.chmod(tmp_path / "a.bin", 0o640)                    # the user's choice survives a rewrite
    monkeypatch.setattr(files, "_UMASK", 0o000)
    atomic_write(tmp_path / "a.bin", lambda f: f.write(b"y"))
    assert os.stat(tmp_path / "a.bin").st_mode & 0o777 == 0o640 and (tmp_path / "a.bin").read_bytes() == b"y"
