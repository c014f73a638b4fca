"""MNIST loading (real and synthetic files), downloading from loopback mirrors, splits."""

import hashlib
import os
import socket
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidnn.data import (DataFileError, DownloadError, MNISTNotFoundError, download_mnist,
                          load_mnist, read_idx, subset, train_validation_split)
from minidnn.data import download as download_module
from minidnn.data import mnist

# Read before the autouse fixture clears the variable: CI may point it at the files.
REAL_DIR = os.environ.get("MINIDNN_DATA") or str(
    Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist")
REAL_COUNTS = {  # images per class in the original distribution
    "train": [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    "test": [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
}
FOUR_FILES = [n for s in mnist.SPLITS.values() for n in s[:2]]

needs_real = pytest.mark.skipif(
    not all(os.path.isfile(os.path.join(REAL_DIR, f)) for f in FOUR_FILES),
    reason=f"MNIST files not found in {REAL_DIR} (set MINIDNN_DATA)")


def md5(data):
    return hashlib.md5(data).hexdigest()


# --- the real files ---------------------------------------------------------------

@needs_real
@pytest.mark.parametrize("split", ["train", "test"])
def test_real_files(monkeypatch, split):
    monkeypatch.setenv("MINIDNN_DATA", REAL_DIR)
    x, y = load_mnist(split, download=False)
    n = sum(REAL_COUNTS[split])
    assert x.shape == (n, 1, 28, 28) and x.dtype == np.float32
    assert y.shape == (n,) and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    assert list(np.bincount(y, minlength=10)) == REAL_COUNTS[split]

    flat, y_flat = load_mnist(split, download=False, flat=True)
    assert flat.shape == (n, 784)
    assert np.array_equal(flat, x.reshape(n, 784)) and np.array_equal(y_flat, y)

    x64, _ = load_mnist(split, download=False, dtype="float64")
    assert x64.shape == x.shape and x64.dtype == np.float64
    assert np.array_equal(x64.astype(np.float32), x)  # both are pixel / 255, rounded


@needs_real
def test_real_train_images_accepted_despite_noncanonical_md5():
    data = Path(REAL_DIR, "train-images-idx3-ubyte.gz").read_bytes()
    assert md5(data) != download_module.MNIST_MD5["train-images-idx3-ubyte.gz"]
    x, _ = load_mnist("train", data_dir=REAL_DIR, download=False)
    assert len(x) == 60000


@needs_real
def test_cache_is_not_corrupted_by_callers():
    x, y = load_mnist("test", data_dir=REAL_DIR, download=False)
    expected_x, expected_y = x.copy(), y.copy()
    x[:] = -1.0
    y[:] = 99
    x2, y2 = load_mnist("test", data_dir=REAL_DIR, download=False)
    np.testing.assert_array_equal(x2, expected_x)
    np.testing.assert_array_equal(y2, expected_y)
    _, *cached = mnist._cache[(os.path.realpath(REAL_DIR), "test")]
    assert all(not a.flags.writeable for a in cached)


# --- argument checks and search order -----------------------------------------------

def test_bad_split_and_dtype():
    with pytest.raises(ValueError, match="'test'.*'train'|'train'.*'test'"):
        load_mnist("validation")
    with pytest.raises(ValueError, match="floating"):
        load_mnist("test", dtype="int32")


def test_synthetic_split_values_and_repeat_loads(tmp_path, small_mnist, write_files, make_idx):
    directory = write_files(tmp_path / "d", small_mnist("train"))
    x, y = load_mnist("train", data_dir=directory, download=False)
    images = read_idx(directory / "train-images-idx3-ubyte.gz", 3)
    np.testing.assert_array_equal(x[:, 0], images.astype(np.float32) / 255)
    np.testing.assert_array_equal(y, np.arange(6) % 10)
    x_again, _ = load_mnist("train", data_dir=directory, download=False)
    np.testing.assert_array_equal(x_again, x)
    assert x_again is not x and x_again.flags.writeable
    # Replacing a file invalidates the in-memory cache.
    labels = directory / "train-labels-idx1-ubyte.gz"
    labels.write_bytes(make_idx(np.full(6, 7)))
    os.utime(labels, ns=(0, 0))
    assert set(load_mnist("train", data_dir=directory, download=False)[1]) == {7}


def test_search_order(tmp_path, monkeypatch, small_mnist, write_files, make_idx):
    files = small_mnist("test")
    labels_name = mnist.SPLITS["test"].labels
    monkeypatch.setenv("MINIDNN_DATA", str(tmp_path / "env"))
    arg, env, cache = tmp_path / "arg", tmp_path / "env", Path(mnist.cache_dir())
    for i, directory in enumerate([arg, env, cache]):
        # Each directory's labels are all i, telling which one was read.
        write_files(directory, {**files, labels_name: make_idx(np.full(4, i))})

    assert set(load_mnist("test", data_dir=arg, download=False)[1]) == {0}
    assert set(load_mnist("test", data_dir=tmp_path / "empty", download=False)[1]) == {1}
    monkeypatch.delenv("MINIDNN_DATA")
    assert set(load_mnist("test", data_dir=tmp_path / "empty", download=False)[1]) == {2}
    assert cache == tmp_path / "xdg-cache" / "minidnn" / "mnist"


def test_not_found_without_download(tmp_path, small_mnist):
    with pytest.raises(MNISTNotFoundError) as info:
        load_mnist("test", data_dir=tmp_path / "nothing", download=False)
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert "MINIDNN_DATA" in message
    assert str(tmp_path / "nothing") in message
    assert mnist.cache_dir() in message
    assert "t10k-images-idx3-ubyte.gz" in message


# --- validation across the two files of a split --------------------------------------

def test_bad_label_value(tmp_path, small_mnist, write_files, make_idx):
    files = small_mnist("test")
    files[mnist.SPLITS["test"].labels] = make_idx(np.array([0, 1, 10, 3]))
    directory = write_files(tmp_path / "d", files)
    with pytest.raises(DataFileError, match="t10k-labels-idx1-ubyte.gz.*label value 10"):
        load_mnist("test", data_dir=directory, download=False)


def test_images_labels_count_mismatch(tmp_path, small_mnist, write_files, make_idx):
    files = small_mnist("test")
    files[mnist.SPLITS["test"].labels] = make_idx(np.arange(3))
    directory = write_files(tmp_path / "d", files)
    with pytest.raises(DataFileError, match="4 images.*t10k-labels-idx1-ubyte.gz.*3 labels"):
        load_mnist("test", data_dir=directory, download=False)


def test_split_size_mismatch(tmp_path, monkeypatch, small_mnist, write_files):
    directory = write_files(tmp_path / "d", small_mnist("train"))
    monkeypatch.setitem(mnist.SPLITS, "train", mnist.SPLITS["train"]._replace(size=60000))
    with pytest.raises(DataFileError, match="train-images-idx3-ubyte.gz.*6 items, expected 60000"):
        load_mnist("train", data_dir=directory, download=False)


# --- downloading from loopback mirrors -----------------------------------------------

def closed_port_url():
    """Base URL on 127.0.0.1 where nothing listens (connection refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


def test_download_verified_file_is_saved_and_loads(tmp_path, small_mnist, http_mirror):
    files = small_mnist("test")
    base = http_mirror(files)
    dest = tmp_path / "dl"
    paths = download_mnist(dest, filenames=list(files), mirrors=[base],
                           md5s={name: md5(data) for name, data in files.items()}, timeout=5)
    assert sorted(os.listdir(dest)) == sorted(files)
    assert [Path(p).read_bytes() for p in paths] == list(files.values())
    umask = os.umask(0)
    os.umask(umask)
    assert all(os.stat(p).st_mode & 0o777 == 0o666 & ~umask for p in paths)     # not mkstemp's 0o600
    x, y = load_mnist("test", data_dir=dest, download=False)
    assert x.shape == (4, 1, 28, 28) and list(y) == [0, 1, 2, 3]


def test_checksum_mismatch_leaves_nothing(tmp_path, small_mnist, http_mirror):
    files = small_mnist("test")
    base = http_mirror(files)
    name = mnist.SPLITS["test"].labels
    dest = tmp_path / "dl"
    with pytest.raises(DownloadError) as info:
        download_mnist(dest, filenames=[name], mirrors=[base], md5s={name: "0" * 32}, timeout=5)
    message = str(info.value)
    assert "md5" in message and "mismatch" in message and base + name in message
    assert "MINIDNN_DATA" in message and str(dest) in message
    assert not dest.exists()                  # no partial file, and the folder it made is gone again


def test_bad_mirror_then_good_mirror(tmp_path, small_mnist, http_mirror):
    files = small_mnist("test")
    name = mnist.SPLITS["test"].labels
    bad = http_mirror({name: files[name][:-3] + b"xyz"})
    missing = http_mirror({})  # 404
    good = http_mirror(files)
    dest = tmp_path / "dl"
    [path] = download_mnist(dest, filenames=[name], mirrors=[bad, missing, good],
                            md5s={name: md5(files[name])}, timeout=5)
    assert Path(path).read_bytes() == files[name]
    assert os.listdir(dest) == [name]
    assert http_mirror.requests == ["/mnist/" + name] * 3


def test_unreachable_mirror_fails_fast(tmp_path, monkeypatch):
    """One refused connection ends the download: no retries, no attempt at the other three files."""
    import urllib.request
    base = closed_port_url()
    attempts = []
    real_urlopen = urllib.request.urlopen

    def counting_urlopen(url, *args, **kwargs):
        attempts.append(url)
        return real_urlopen(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", counting_urlopen)
    with pytest.raises(DownloadError) as info:
        download_mnist(tmp_path / "dl", mirrors=[base], timeout=2)
    assert attempts == [base + "train-images-idx3-ubyte.gz"]
    message = str(info.value)
    assert base + "train-images-idx3-ubyte.gz" in message
    assert "refused" in message.lower()
    assert "MINIDNN_DATA" in message
    assert not (tmp_path / "dl").exists()


def test_mirror_env_variable(monkeypatch):
    monkeypatch.setenv("MINIDNN_MNIST_MIRRORS", " http://a/x/ ,http://b/,")
    assert download_module.mirror_list() == ["http://a/x/", "http://b/"]
    assert download_module.mirror_list(["http://c/"]) == ["http://c/"]
    monkeypatch.setenv("MINIDNN_MNIST_MIRRORS", "")
    assert download_module.mirror_list() == list(download_module.DEFAULT_MNIST_MIRRORS)


def test_load_mnist_downloads_missing_files(tmp_path, monkeypatch, small_mnist, http_mirror):
    files = small_mnist("test")
    monkeypatch.setenv("MINIDNN_MNIST_MIRRORS", http_mirror(files))
    for name, data in files.items():
        monkeypatch.setitem(download_module.MNIST_MD5, name, md5(data))
    x, _ = load_mnist("test", data_dir=tmp_path / "explicit", flat=True)  # into data_dir
    assert x.shape == (4, 784)
    assert sorted(os.listdir(tmp_path / "explicit")) == sorted(files)
    assert not os.path.exists(mnist.cache_dir())
    x, y = load_mnist("test")  # found nowhere: downloads into the user cache
    assert x.shape == (4, 1, 28, 28) and list(y) == [0, 1, 2, 3]
    assert sorted(os.listdir(mnist.cache_dir())) == sorted(files)


def test_both_splits_download_into_one_fresh_data_dir(tmp_path, monkeypatch, small_mnist, http_mirror):
    """The train split downloaded into a new folder; the test split then completes that folder."""
    files = {**small_mnist("train"), **small_mnist("test")}
    monkeypatch.setenv("MINIDNN_MNIST_MIRRORS", http_mirror(files))
    for name, data in files.items():
        monkeypatch.setitem(download_module.MNIST_MD5, name, md5(data))
    fresh = tmp_path / "fresh"
    load_mnist("train", data_dir=fresh)
    x, _ = load_mnist("test", data_dir=fresh)
    assert x.shape == (mnist.SPLITS["test"].size, 1, 28, 28)
    assert sorted(os.listdir(fresh)) == sorted(files) and not os.path.exists(mnist.cache_dir())


def test_load_mnist_download_failure_is_not_found(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIDNN_MNIST_MIRRORS", closed_port_url())
    with pytest.raises(MNISTNotFoundError) as info:
        load_mnist("test")
    message = str(info.value)
    assert f"Downloading into {mnist.cache_dir()} failed" in message and "MINIDNN_DATA" in message
    assert message.count("put the files") + message.count("Put the four MNIST files") == 1   # one piece of advice
    assert isinstance(info.value.__cause__, DownloadError)


def test_a_named_folder_missing_one_file_is_an_error_not_a_fallback(tmp_path, monkeypatch, small_mnist):
    """$MINIDNN_DATA holding three of the four files: the fourth is named; the cache, which holds the
    whole split, is not silently used instead."""
    named, cache = tmp_path / "named", tmp_path / "cache"
    for folder, files in ((named, {**small_mnist("train"), **small_mnist("test")}), (cache, small_mnist("test"))):
        folder.mkdir()
        for name, data in files.items():
            (folder / name).write_bytes(data)
    (named / mnist.SPLITS["test"].labels).unlink()
    monkeypatch.setenv("MINIDNN_DATA", str(named))
    monkeypatch.setattr(mnist, "cache_dir", lambda: str(cache))
    with pytest.raises(MNISTNotFoundError) as info:
        load_mnist("test", download=False)
    assert str(info.value).startswith(f"$MINIDNN_DATA {named} holds ")
    assert f"but not {mnist.SPLITS['test'].labels}: put the missing file there" in str(info.value)
    x, _ = load_mnist("train", download=False)          # the split it does hold still loads
    assert x.shape == (mnist.SPLITS["train"].size, 1, 28, 28)
    monkeypatch.setenv("MINIDNN_MNIST_MIRRORS", closed_port_url())
    with pytest.raises(MNISTNotFoundError, match="put the missing file there.*\n.*Downloading them failed"):
        load_mnist("test")                             # downloading into it was tried, and failed
    assert sorted(os.listdir(named)) == sorted(n for n in mnist.ALL_FILES if n != mnist.SPLITS["test"].labels)


# --- split helpers -----------------------------------------------------------------

@settings(max_examples=50, deadline=None)
@given(st.integers(0, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))),
       st.integers(0, 2**32))
def test_train_validation_split_partitions(n_and_k, seed):
    n, k = n_and_k
    train, val = train_validation_split(n, k, seed)
    assert len(val) == k and len(train) == n - k
    assert train.dtype == val.dtype == np.int64
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(n))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
    again = train_validation_split(n, k, seed)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], val)


def test_splits_depend_on_seed():
    assert not np.array_equal(train_validation_split(1000, 100, 0)[1],
                              train_validation_split(1000, 100, 1)[1])
    assert np.array_equal(subset(1000, 50, 3), subset(1000, 50, 3))
    assert not np.array_equal(subset(1000, 50, 3), subset(1000, 50, 4))


def test_subset():
    idx = subset(100, 30, seed=7)
    assert idx.shape == (30,) and len(set(idx)) == 30 and idx.min() >= 0 and idx.max() < 100
    assert np.all(np.diff(idx) > 0)
    with pytest.raises(ValueError):
        subset(10, 11, 0)
    with pytest.raises(ValueError):
        train_validation_split(10, -1, 0)
