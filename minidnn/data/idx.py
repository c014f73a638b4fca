"""Reader for gzip-compressed IDX files (the format of the MNIST distribution).

An IDX file is a big-endian header followed by the raw array::

    bytes 0-1   0x00 0x00
    byte  2     element type code (0x08 = unsigned byte, the only one supported)
    byte  3     number of dimensions d
    4*d bytes   the d dimension sizes, uint32 big-endian
    payload     prod(sizes) elements, C order

So MNIST images have magic 0x00000803 (uint8, 3-d: N x 28 x 28) and labels
0x00000801 (uint8, 1-d: N). Every defect is reported as a :class:`DataFileError`
whose message starts with the file's path.
"""

import gzip
import struct
import zlib

import numpy as np

__all__ = ["DataFileError", "read_idx", "UBYTE"]

UBYTE = 0x08  # IDX element type code for unsigned bytes


class DataFileError(ValueError):
    """A data file exists but is corrupt or not what was expected."""


def _fail(path, problem):
    raise DataFileError(f"{path}: {problem}")


def _decompress(path):
    """Return the decompressed bytes of gzip file ``path``.

    A missing file raises FileNotFoundError as usual; anything wrong with the
    gzip stream (not gzip, truncated, CRC error) raises DataFileError.
    """
    with open(path, "rb") as raw:
        try:
            with gzip.GzipFile(fileobj=raw) as stream:
                return stream.read()
        except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
            _fail(path, f"not a valid gzip file ({type(err).__name__}: {err}); the file is truncated or "
                        "corrupt: copy it again, or delete it and let load_mnist download a fresh one")


def read_idx(path, expected_ndim, expected_shape=None):
    """Read a gzip-compressed unsigned-byte IDX file into a NumPy array.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.gz`` file.
    expected_ndim : int
        Required number of dimensions (the magic number must be ``0x0800 | ndim``).
    expected_shape : tuple of (int or None), optional
        Required sizes, one per dimension; ``None`` accepts any size. A wrong
        first size is reported as an item-count mismatch.

    Returns
    -------
    numpy.ndarray of uint8 with ``expected_ndim`` dimensions, e.g. (N, 28, 28).
    It is read-only (a view of the decompressed bytes); copy it to modify it.

    Raises
    ------
    DataFileError
        Bad gzip stream, wrong magic number / element type / dimension count,
        unexpected sizes, or a payload shorter (truncated) or longer (trailing
        bytes) than the header implies.
    """
    data = _decompress(path)
    expected_magic = (UBYTE << 8) | expected_ndim
    if len(data) < 4:
        _fail(path, f"file too short for an IDX header ({len(data)} bytes after decompression)")
    (magic,) = struct.unpack(">I", data[:4])
    if magic != expected_magic:
        zeros, dtype_code, ndim = magic >> 16, (magic >> 8) & 0xFF, magic & 0xFF
        details = []
        if zeros != 0:
            details.append("first two bytes are not zero: not an IDX file")
        if dtype_code != UBYTE:
            details.append(f"element type code 0x{dtype_code:02x}, expected 0x{UBYTE:02x} (uint8)")
        if ndim != expected_ndim:
            details.append(f"{ndim} dimensions, expected {expected_ndim}")
        _fail(path, f"wrong magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
                    f"({'; '.join(details)})")

    header_len = 4 + 4 * expected_ndim
    if len(data) < header_len:
        _fail(path, f"truncated header: {len(data)} bytes, need {header_len}")
    shape = struct.unpack(f">{expected_ndim}I", data[4:header_len])

    if expected_shape is not None:
        if len(expected_shape) != expected_ndim:
            raise ValueError("expected_shape must have expected_ndim entries")
        if expected_shape[0] is not None and shape[0] != expected_shape[0]:
            _fail(path, f"item count mismatch: header says {shape[0]} items, "
                        f"expected {expected_shape[0]}")
        if any(e is not None and s != e for s, e in zip(shape[1:], expected_shape[1:])):
            want = "x".join("*" if e is None else str(e) for e in expected_shape[1:])
            got = "x".join(map(str, shape[1:]))
            _fail(path, f"wrong dimensions {got} per item, expected {want}")

    payload_len = len(data) - header_len
    needed = int(np.prod(shape, dtype=np.int64))
    if payload_len < needed:
        _fail(path, f"truncated: header implies {needed} data bytes (shape {shape}) "
                    f"but only {payload_len} are present")
    if payload_len > needed:
        _fail(path, f"{payload_len - needed} trailing bytes after the {needed} data bytes "
                    f"implied by the header (shape {shape})")
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(shape)
