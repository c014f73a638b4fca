"""The Cauchy point search's cumulative sums as one CUDA kernel, for CuPy.

``lbfgsb._cauchy_chunk`` accumulates the states after each of a chunk's breakpoints: cumulative
sums along the middle axis of a (rows, K + 1, 2m) array, twice per chunk. CuPy's ``cumsum`` along
a middle axis took 0.86 ms at 10,000 rows on an H200 (``bench/attack_phases.py --primitives``),
two of them 1.7 ms of the chunk's 3.1 ms, for an array of only 50 MB. Here one thread per (row, column)
adds down its column, left to right, which is what NumPy does (``_accumulate_states``' slice
additions, NumPy's own cumsum), so the sums round as NumPy's do, bit for bit (CuPy's cumsum need
not add in that order). The tests compile this source for the host and compare. (On the GPU,
CuPy's flush-to-zero makes float32 subnormals count as zero, where NumPy keeps them.)
"""

from .. import backend

# a (R, J, L) C-ordered, updated in place
PREAMBLE = r"""
// a[r, j, l] = a[r, j, l] + a[r, j - 1, l] for j = 1, ..., J - 1 in turn (column idx = (r, l))
template <typename A>
__device__ void accumulate_column(A a, long long idx, long long J, long long L) {
    const long long l = idx % L, r = idx / L;
    long long at = r * J * L + l;
    for (long long j = 1; j < J; ++j, at += L) a[at + L] = a[at + L] + a[at];
}
"""
IN_PARAMS = "int64 J, int64 L"
OUT_PARAMS = "raw T a"
OPERATION = "accumulate_column(a, i, J, L);"
OPTIONS = ("--fmad=false",)      # additions only; as the other kernels
KERNELS = {"accumulate_states": (IN_PARAMS, OUT_PARAMS, OPERATION)}


def accumulate(a):
    """The cumulative sum of a C-contiguous (R, J, L) or (R, J) CuPy array along axis 1, in place."""
    rows, steps = a.shape[:2]
    columns = a.shape[2] if a.ndim == 3 else 1
    if not a.flags.c_contiguous:
        raise ValueError("the states to accumulate must be C-contiguous")
    kernel = backend.elementwise_kernel("accumulate_states", *KERNELS["accumulate_states"], PREAMBLE, OPTIONS)
    kernel(steps, columns, a.ravel(), size=rows * columns)       # a view: the sums land in a
    return a
