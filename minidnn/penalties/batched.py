"""Per-example matrices of a batch, (N, K, ·), as the Jacobian penalties use them (layerwise.py,
global_jacobian.py): products with one shared matrix, the softmax's Jacobians, diagonals."""
from .. import backend


def stacked_products(A, B):
    """A_n B for every n: (N, K, H) by (H, J) -> (N, K, J), as one (N·K, H) by (H, J) product.
    (NumPy's matmul broadcasts B by a loop of N small products: 4x slower at N200's shapes.)"""
    n, k, h = A.shape
    return (A.reshape(n * k, h) @ B).reshape(n, k, B.shape[1])


def softmax_jacobians(y):
    """M_n = diag(y_n) − y_n y_nᵀ for every row of y (N, K): (N, K, K), the softmax's Jacobians."""
    xp = backend.get_array_module(y)
    n, k = y.shape
    M = xp.empty((n, k, k), dtype=y.dtype)                        # C order: the reshape below is a view
    xp.multiply(-y[:, :, None], y[:, None, :], out=M)
    M.reshape(n, k * k)[:, ::k + 1] += y                          # the diagonals, as a strided view
    return M


def diagonals(A):
    """(N, K): the diagonal of each A_n (N, K, K), a view."""
    return backend.get_array_module(A).diagonal(A, axis1=1, axis2=2)
