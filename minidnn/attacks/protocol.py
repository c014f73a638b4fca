"""The paper's constant-c protocol (Sec. 2.1): one c per (dataset, model).

Choose the largest c (the smallest perturbations) whose adversarial error rate on a
seeded subset is still ≥ ``threshold`` (99.5% by default: a margin so the full set
stays ≥ 99%). The error rate falls as c grows (a larger c buys a smaller ‖r‖), so:
bracket by factors of 4 from ``c0``, then bisect in log c until hi/lo ≤ ``ratio``.
Every trial is kept in the trace.
"""
import math


def search_c(attack, threshold=0.995, c0=1.0, ratio=1.05, factor=4.0, c_min=1e-8, c_max=1e8, log=None):
    """``attack(c) -> AttackResult`` on the search subset. Returns (c, trace).

    trace: list of {"c", "error_rate", "mean_distortion"} in the order tried.
    Raises RuntimeError if even ``c_min`` fails to reach the threshold.
    """
    if not 0 < threshold <= 1 or ratio <= 1 or c0 <= 0:
        raise ValueError("need 0 < threshold ≤ 1, ratio > 1 and c0 > 0")
    trace = []

    def passes(c):
        result = attack(c)
        row = {"c": c, "error_rate": result.error_rate, "mean_distortion": result.mean_distortion}
        trace.append(row)
        if log:
            log(f"c = {c:.4g}: error {100 * row['error_rate']:.2f}%, mean distortion {row['mean_distortion']:.4f}")
        return result.error_rate >= threshold

    lo = hi = None                    # lo: largest c known to pass; hi: smallest c known to fail
    c = c0
    if passes(c):
        lo = c
        while hi is None:
            c *= factor
            if c > c_max:
                return lo, trace      # passes everywhere we may look: the largest allowed c
            if passes(c):
                lo = c
            else:
                hi = c
    else:
        hi = c
        while lo is None:
            c /= factor
            if c < c_min:
                raise RuntimeError(f"no c ≥ {c_min:g} reaches {100 * threshold:.1f}% adversarial error "
                                   f"(trace: {trace})")
            if passes(c):
                lo = c
            else:
                hi = c
    while hi / lo > ratio:
        mid = math.sqrt(lo * hi)
        if passes(mid):
            lo = mid
        else:
            hi = mid
    return lo, trace
