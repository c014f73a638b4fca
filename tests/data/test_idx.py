"""IDX reader: valid round trips and every kind of corrupt file."""

import gzip
import os
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis.extra.numpy import array_shapes, arrays

from minidnn.data import DataFileError, read_idx

IMAGES = (np.arange(5 * 28 * 28) % 256).astype(np.uint8).reshape(5, 28, 28)


@settings(max_examples=30, deadline=None)
@given(array=arrays(np.uint8, array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=6)))
def test_round_trip(make_idx, array):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "a.gz")
        with open(path, "wb") as f:
            f.write(make_idx(array))
        out = read_idx(path, array.ndim)
    assert out.dtype == np.uint8 and out.shape == array.shape
    np.testing.assert_array_equal(out, array)


def test_valid_file_with_expected_shape(tmp_path, make_idx):
    path = tmp_path / "images.gz"
    path.write_bytes(make_idx(IMAGES))
    out = read_idx(path, 3, (5, 28, 28))
    np.testing.assert_array_equal(out, IMAGES)
    assert not out.flags.writeable
    np.testing.assert_array_equal(read_idx(path, 3, (None, 28, 28)), IMAGES)


def _corrupt(case, raw):
    """File bytes for a corruption ``case`` (``raw`` builds uncompressed IDX bytes)
    and a phrase the error message must contain."""
    good = gzip.compress(raw(IMAGES))
    if case == "crc error":
        flipped = bytearray(good)
        flipped[-8] ^= 0xFF  # the gzip trailer is CRC32 then ISIZE
        return bytes(flipped), "gzip"
    return {
        "truncated gzip": (good[: len(good) // 2], "gzip"),
        "not gzip": (raw(IMAGES), "gzip"),
        "empty file": (b"", "too short"),
        "labels magic": (gzip.compress(raw(IMAGES.ravel())), "magic"),
        "float dtype code": (gzip.compress(raw(IMAGES, magic=0x00000D03)), "element type"),
        "nonzero first bytes": (gzip.compress(raw(IMAGES, magic=0x12340803)), "magic"),
        "wrong dims": (gzip.compress(raw(IMAGES[:, :, :27])), "dimensions"),
        "item count": (gzip.compress(raw(IMAGES[:4])), "item count"),
        "truncated header": (gzip.compress(raw(IMAGES)[:9]), "header"),
        "truncated payload": (gzip.compress(raw(IMAGES)[:-1]), "truncated"),
        "trailing bytes": (gzip.compress(raw(IMAGES) + b"\0\0"), "trailing"),
    }[case]


@pytest.mark.parametrize("case", [
    "truncated gzip", "crc error", "not gzip", "empty file", "labels magic", "float dtype code",
    "nonzero first bytes", "wrong dims", "item count", "truncated header", "truncated payload",
    "trailing bytes",
])
def test_corrupt_file_raises_data_file_error(tmp_path, idx_bytes, case):
    data, phrase = _corrupt(case, idx_bytes)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(data)
    with pytest.raises(DataFileError) as info:
        read_idx(path, 3, (5, 28, 28))
    message = str(info.value)
    assert path.name in message
    assert phrase in message.lower()
    assert isinstance(info.value, ValueError)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "absent.gz", 1)
