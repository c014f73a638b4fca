"""Download files from a list of mirrors, verify their md5 and write them atomically.

A file is streamed into a temporary file in the destination directory and moved
into place with :func:`os.replace` only once its checksum matches, so the
destination never holds a partial or unverified file. Mirrors are tried in turn;
when all fail, :class:`DownloadError` lists each mirror and why it failed.
"""

import hashlib
import http.client
import os
import urllib.request

from ..files import atomic_write

__all__ = ["DownloadError", "MNIST_MD5", "DEFAULT_MNIST_MIRRORS", "MIRRORS_ENV", "DATA_ENV",
           "mirror_list", "download_file", "download_mnist"]

DATA_ENV = "MINIDNN_DATA"  # directory holding the MNIST files (see minidnn.data.mnist)
MIRRORS_ENV = "MINIDNN_MNIST_MIRRORS"  # comma-separated base URLs, overrides the defaults

DEFAULT_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

# md5 of the canonical distribution files. Only files downloaded here are checked
# against it: a local copy is accepted whenever its IDX structure is valid.
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}

DEFAULT_TIMEOUT = 30.0  # seconds, per blocking socket operation
_CHUNK = 1 << 16


class DownloadError(RuntimeError):
    """No mirror delivered a file with the expected checksum. ``failures``: what each mirror
    answered (the message without the advice that follows it)."""

    def __init__(self, message, failures=None):
        super().__init__(message)
        self.failures = failures if failures is not None else message


class _ChecksumError(ValueError):
    pass


def mirror_list(mirrors=None):
    """Base URLs to try, in order: ``mirrors`` if given, else the comma-separated
    ``$MINIDNN_MNIST_MIRRORS`` if set and non-empty, else DEFAULT_MNIST_MIRRORS."""
    if mirrors is None:
        mirrors = os.environ.get(MIRRORS_ENV, "").split(",")
    mirrors = [m.strip() for m in mirrors if m.strip()]
    return mirrors or list(DEFAULT_MNIST_MIRRORS)


def _fetch_verified(url, dest, md5, timeout):
    """Stream ``url`` to ``dest`` atomically (``atomic_write``): ``dest`` appears only if the
    download's md5 is ``md5``; on any failure the temp file is removed."""
    def stream(out):
        digest = hashlib.md5()
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            while chunk := resp.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != md5.lower():
            raise _ChecksumError(f"md5 checksum mismatch: got {digest.hexdigest()}, expected {md5}")
    atomic_write(dest, stream)


def download_file(filename, dest_dir, md5, mirrors=None, timeout=DEFAULT_TIMEOUT):
    """Download ``filename`` from the first mirror that serves it with the right md5.

    Tries ``base + filename`` for each base URL of ``mirror_list(mirrors)``; a
    network error, HTTP error or checksum mismatch moves on to the next mirror.

    Returns the path ``dest_dir/filename`` (the directory is created if needed).
    Raises DownloadError listing every mirror URL and its failure.
    """
    os.makedirs(dest_dir, exist_ok=True)
    dest = os.path.join(dest_dir, filename)
    failures = []
    for base in mirror_list(mirrors):
        url = base.rstrip("/") + "/" + filename
        try:
            _fetch_verified(url, dest, md5, timeout)
            return dest
        except (OSError, ValueError, http.client.HTTPException) as err:  # URLError is an OSError
            failures.append(f"  {url}: {type(err).__name__}: {err}")
    raise DownloadError(f"could not download {filename} from any mirror:\n" + "\n".join(failures))


def download_mnist(dest_dir, filenames=None, mirrors=None, md5s=None, timeout=DEFAULT_TIMEOUT):
    """Download MNIST files into ``dest_dir`` and return their paths.

    ``filenames`` defaults to all four files; ``md5s`` maps file name to md5 and
    defaults to MNIST_MD5 (override it to serve synthetic files in tests).
    The DownloadError raised on failure also says where to put the files by hand.
    """
    md5s = MNIST_MD5 if md5s is None else md5s
    filenames = list(md5s) if filenames is None else filenames
    created = not os.path.isdir(dest_dir)
    try:
        return [download_file(name, dest_dir, md5s[name], mirrors, timeout) for name in filenames]
    except DownloadError as err:
        if created and os.path.isdir(dest_dir) and not os.listdir(dest_dir):
            os.rmdir(dest_dir)          # a mistyped directory is not left behind
        raise DownloadError(
            f"{err}\nTo install MNIST by hand, put the files {', '.join(filenames)} "
            f"in {dest_dir}, or in any directory and set the environment variable "
            f"{DATA_ENV} to it. Set {MIRRORS_ENV} (comma-separated base URLs) to use other mirrors.",
            failures=str(err)) from None
