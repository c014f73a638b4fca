"""Datasets: MNIST loading (IDX reader, mirror download) and seeded index splits."""

from .download import DownloadError, download_mnist
from .idx import DataFileError, read_idx
from .mnist import MNISTNotFoundError, load_mnist
from .splits import subset, train_validation_split

__all__ = [
    "load_mnist", "read_idx", "download_mnist", "train_validation_split", "subset",
    "DataFileError", "DownloadError", "MNISTNotFoundError",
]
