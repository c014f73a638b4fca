"""Load the MNIST handwritten digits from the four original IDX files.

Files are looked for, in order, in: the ``data_dir`` argument, ``$MINIDNN_DATA``,
and the user cache (``$XDG_CACHE_HOME/minidnn/mnist``, default
``~/.cache/minidnn/mnist``). The first directory holding both files of the
requested split is used. A directory you named (``data_dir`` or ``$MINIDNN_DATA``) that holds
some of the four files but not the split's is completed by downloading into it (or, with
downloading off or failing, is an error naming the missing files): the split is never read from
another copy than the other split's. Local files are accepted when their IDX structure is
valid (header, sizes, length, label range); md5 checksums are verified only for
files this module downloads itself.
"""

import os
from collections import namedtuple

import numpy as np

from .download import DATA_ENV, DownloadError, download_mnist
from .idx import DataFileError, read_idx

__all__ = ["load_mnist", "MNISTNotFoundError", "SPLITS", "cache_dir", "clear_cache"]

Split = namedtuple("Split", "images labels size")

#: File names and item count of each split (tests may substitute smaller sizes).
SPLITS = {
    "train": Split("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60000),
    "test": Split("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10000),
}
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10

# (real path of directory, split) -> (file sizes and mtimes, images uint8 (N, 28, 28),
# labels uint8 (N,)); the arrays are read-only.
_cache = {}


class MNISTNotFoundError(FileNotFoundError):
    """The MNIST files are in none of the searched directories and could not be downloaded."""


def cache_dir():
    """The per-user download directory: ``$XDG_CACHE_HOME/minidnn/mnist``,
    by default ``~/.cache/minidnn/mnist``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "minidnn", "mnist")


def clear_cache():
    """Forget the arrays decoded so far in this process."""
    _cache.clear()


def _candidates(data_dir):
    """Directories to search, in order, as (description, path) pairs."""
    found = []
    if data_dir is not None:
        found.append(("data_dir argument", os.fspath(data_dir)))
    if os.environ.get(DATA_ENV):
        found.append((f"${DATA_ENV}", os.environ[DATA_ENV]))
    found.append(("user cache", cache_dir()))
    return found


def _has_files(directory, names):
    return all(os.path.isfile(os.path.join(directory, name)) for name in names)


def _read_split(directory, split):
    """Decode and validate one split. Returns read-only uint8 arrays
    images (N, 28, 28) and labels (N,)."""
    spec = SPLITS[split]
    img_path = os.path.join(directory, spec.images)
    lbl_path = os.path.join(directory, spec.labels)
    images = read_idx(img_path, 3, (None,) + IMAGE_SHAPE)
    labels = read_idx(lbl_path, 1)
    if len(images) != len(labels):
        raise DataFileError(f"{img_path} holds {len(images)} images but {lbl_path} holds "
                            f"{len(labels)} labels")
    if len(images) != spec.size:
        raise DataFileError(f"{img_path}, {lbl_path}: {len(images)} items, expected "
                            f"{spec.size} for the {split!r} split")
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        raise DataFileError(f"{lbl_path}: label value {labels[bad[0]]} at index {bad[0]} is "
                            f"outside 0..{NUM_CLASSES - 1} ({bad.size} bad labels)")
    return images, labels


ALL_FILES = tuple(name for spec in SPLITS.values() for name in spec[:2])


def _not_found(names, searched, reason):
    where = "\n".join(f"  {desc}: {path}" for desc, path in searched)
    return MNISTNotFoundError(
        f"MNIST files {', '.join(names)} not found in any of:\n{where}\n{reason}\n"
        f"Put the four MNIST files ({', '.join(ALL_FILES)}) in one directory and pass it as "
        f"data_dir (--data-dir) or set the environment variable {DATA_ENV} to it."
    )


def _incomplete(desc, directory, names, reason=""):
    """A directory the user named holds some MNIST files but not all of ``names``."""
    present = [n for n in ALL_FILES if os.path.isfile(os.path.join(directory, n))]
    missing = [n for n in names if n not in present]
    return MNISTNotFoundError(
        f"{desc} {directory} holds {', '.join(present)} but not {', '.join(missing)}: put the missing "
        f"file{'s' if len(missing) > 1 else ''} there (all four MNIST files belong in one directory)"
        + (f"\n{reason}" if reason else ""))


def _locate(split, data_dir, download):
    """Return the directory to read ``split`` from, downloading the files if needed."""
    names = SPLITS[split][:2]
    searched = _candidates(data_dir)
    for desc, directory in searched:
        if _has_files(directory, names):
            return directory
        if desc != "user cache" and any(os.path.isfile(os.path.join(directory, n)) for n in ALL_FILES):
            # a folder you named, with MNIST in it but not this split: complete it there, or say so
            if not download:
                raise _incomplete(desc, directory, names)
            try:
                download_mnist(directory, filenames=[n for n in names
                                                     if not os.path.isfile(os.path.join(directory, n))])
            except DownloadError as err:
                raise _incomplete(desc, directory, names, f"Downloading them failed: {err.failures}") from err
            return directory
    if not download:
        raise _not_found(names, searched, "Downloading is disabled (download=False).")
    target = searched[0][1] if data_dir is not None else cache_dir()
    missing = [name for name in names if not os.path.isfile(os.path.join(target, name))]
    try:
        download_mnist(target, filenames=missing)
    except DownloadError as err:
        raise _not_found(names, searched, f"Downloading into {target} failed: {err.failures}") from err
    return target


def load_mnist(split="train", data_dir=None, flat=False, dtype="float32", download=True):
    """Load an MNIST split.

    Parameters
    ----------
    split : {"train", "test"}
        60000 training or 10000 test images.
    data_dir : str or os.PathLike, optional
        Directory searched first; also where missing files are downloaded to (otherwise the
        user cache), except that the first named folder holding some of the four files (data_dir,
        then ``$MINIDNN_DATA``) is completed instead, so that the splits come from one folder.
    flat : bool
        Return images as (N, 784) instead of (N, 1, 28, 28).
    dtype : floating dtype
        Image dtype, default float32.
    download : bool
        Download missing files (md5-verified) from the mirrors.

    Returns
    -------
    images : ndarray, shape (N, 1, 28, 28) or (N, 784), ``dtype``, values pixel/255 in [0, 1]
    labels : ndarray, shape (N,), int64, values in 0..9

    Both are new writable arrays; the decoded files are cached in memory per
    (directory, split), so later calls skip decompression unless the files changed.

    Raises
    ------
    ValueError for a bad ``split`` or non-floating ``dtype``; MNISTNotFoundError
    (a FileNotFoundError) when the files cannot be found or downloaded;
    DataFileError when a file is corrupt.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.floating):
        raise ValueError(f"dtype must be a floating type, got {dtype}")
    directory = _locate(split, data_dir, download)
    key = (os.path.realpath(directory), split)
    stamp = [(st.st_size, st.st_mtime_ns) for st in
             (os.stat(os.path.join(directory, name)) for name in SPLITS[split][:2])]
    if key not in _cache or _cache[key][0] != stamp:  # new, or files replaced since
        _cache[key] = (stamp, *_read_split(directory, split))
    _, images, labels = _cache[key]
    x = np.divide(images, 255, dtype=dtype)
    x = x.reshape(len(x), -1) if flat else x[:, None, :, :]
    return x, labels.astype(np.int64)
