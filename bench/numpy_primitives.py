"""The NumPy operations behind lbfgsb.py's element-wise rewrite, timed on the attack's array sizes.

    OPENBLAS_NUM_THREADS=1 python bench/numpy_primitives.py > bench/results/cpu_numpy_primitives.txt

(1,000 × 784) arrays with a mask as irregular as a gradient's signs; (1,000, 33, 20) Cauchy
states; (1,000, 10, 10) matrices. Best of 7, in ms.
"""
import timeit

import numpy

from minidnn.attacks.lbfgsb import _accumulate_states, cholesky_succeeds, steps_to_box


def best_ms(fn, number=5):
    return min(timeit.repeat(fn, number=number, repeat=7)) / number * 1e3


def main():
    rng = numpy.random.default_rng(0)
    print(f"numpy {numpy.__version__}; best of 7, ms per call")
    for dtype in (numpy.float64, numpy.float32):
        x = rng.uniform(0, 1, (1000, 784)).astype(dtype)
        d = rng.standard_normal((1000, 784)).astype(dtype)
        d[:, ::3] = 0
        mask = d < 0
        states = rng.standard_normal((1000, 33, 20)).astype(dtype)
        A = rng.standard_normal((1000, 10, 10)).astype(dtype)
        T = A @ A.transpose(0, 2, 1) + numpy.eye(10, dtype=dtype)

        def where_box():
            with numpy.errstate(all="ignore"):
                return numpy.where(d < 0, -x / d, numpy.where(d > 0, (1 - x) / d, numpy.inf))

        def accumulate():
            a = states.copy()
            _accumulate_states(a)
        rows = [("x + d", lambda: x + d),
                ("where(mask, x, d), irregular mask", lambda: numpy.where(mask, x, d)),
                ("x * mask", lambda: x * mask),
                ("box steps with where (old)", where_box),
                ("steps_to_box (new)", lambda: steps_to_box(x, d)),
                ("cumsum over axis 1 of (1000, 33, 20) (old)", lambda: numpy.cumsum(states, axis=1)),
                ("copy + _accumulate_states (new)", accumulate),
                ("eigvalsh of (1000, 10, 10) (old)", lambda: numpy.linalg.eigvalsh(T)),
                ("cholesky_succeeds (new)", lambda: cholesky_succeeds(T)),
                ("argpartition of a (1000, 784) mask (old)", lambda: numpy.argpartition(mask.view(numpy.int8) * -1,
                                                                                   15, axis=1)),
                ("flatnonzero of it (new)", lambda: numpy.flatnonzero(mask))]
        print(f"\n{numpy.dtype(dtype).name}")
        for name, fn in rows:
            print(f"  {name:<45} {best_ms(fn):8.3f}")


if __name__ == "__main__":
    main()
