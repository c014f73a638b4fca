"""Seeded index helpers: train/validation splits and random subsets.

All functions return sorted int64 index arrays (shuffling for training is the
data loader's job), drawn from ``numpy.random.default_rng(seed)`` so the same
arguments always give the same indices.
"""

import numpy as np

__all__ = ["train_validation_split", "subset"]


def _check(n, k, what):
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= {what} <= n, got {what}={k}, n={n}")


def train_validation_split(n, n_validation, seed):
    """Split ``range(n)`` into disjoint training and validation indices.

    Returns ``(train_idx, val_idx)``: sorted int64 arrays of shapes
    (n - n_validation,) and (n_validation,), together covering ``range(n)``.
    """
    _check(n, n_validation, "n_validation")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_validation:]), np.sort(perm[:n_validation])


def subset(n, size, seed):
    """Return ``size`` distinct indices from ``range(n)``: sorted int64, shape (size,)."""
    _check(n, size, "size")
    return np.sort(np.random.default_rng(seed).permutation(n)[:size])
