"""One BLAS thread for the test run.

The tests multiply small matrices thousands of times. When the machine's cores are busy,
OpenBLAS's worker threads spin waiting for each other and such products get 10–30 times
slower than on one thread (measured: the MNIST training test, 8 s on one thread, 84 s on
two with the cores shared). ``one_openblas_thread()`` pins every OpenBLAS loaded in this
process to one thread, through its C API, and puts the old counts back afterwards.
Linux only (it finds the libraries in /proc/self/maps); elsewhere it does nothing.
"""
import contextlib
import ctypes

# (get, set) function names in OpenBLAS builds: plain, and NumPy/SciPy's renamed 64-bit builds
API = (("openblas_get_num_threads", "openblas_set_num_threads"),
       ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
       ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"))


def loaded_openblas():
    """Paths of the OpenBLAS libraries mapped into this process."""
    try:
        with open("/proc/self/maps") as maps:
            return sorted({line.split(maxsplit=5)[5].strip() for line in maps
                           if "openblas" in line.lower() and len(line.split(maxsplit=5)) == 6})
    except OSError:
        return []


def thread_controls():
    try:
        import scipy.linalg  # noqa: F401  (loads SciPy's own OpenBLAS, which L-BFGS-B uses, so it is pinned too)
    except ImportError:
        pass
    controls = []
    for path in loaded_openblas():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        controls += [(getattr(lib, get), getattr(lib, put)) for get, put in API if hasattr(lib, get)][:1]
    return controls


@contextlib.contextmanager
def one_openblas_thread():
    controls = thread_controls()
    saved = [get() for get, _ in controls]
    for _, put in controls:
        put(1)
    try:
        yield len(controls)
    finally:
        for (_, put), n in zip(controls, saved):
            put(n)
