"""The paper's constant-c protocol (Sec. 2.1): one c per (dataset, model).

Choose the largest c (the smallest perturbations) whose adversarial error rate on a
seeded subset is still ≥ ``threshold`` (99.5% by default: a margin so the full set
stays ≥ 99%). The error rate falls as c grows (a larger c buys a smaller ‖r‖), so:
bracket by factors of 4 from ``c0``, then bisect in log c until hi/lo ≤ ``ratio``.
Every trial is kept in the trace.
"""
import math


def search_c(attack, threshold=0.995, c0=1.0, ratio=1.05, factor=4.0, c_min=1e-8, c_max=1e8, log=None,
             unreachable="raise", plateau=3):
    """``attack(c) -> AttackResult`` on the search subset. Returns (c, trace).

    trace: list of {"c", "error_rate", "mean_distortion"} in the order tried.
    unreachable: what to do when no c reaches the threshold (some examples cannot be moved,
    e.g. where the network's gradient vanishes): 'raise' a RuntimeError (once ``c_min`` fails),
    or 'best': once the error rate has not risen for ``plateau`` smaller c's in a row, aim at
    the best error rate seen instead (the caller can tell from the trace: its maximum is below
    the threshold).
    """
    if unreachable not in ("raise", "best"):
        raise ValueError(f"unreachable must be 'raise' or 'best', got {unreachable!r}")
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
            rates = [row["error_rate"] for row in trace]
            stalled = len(rates) > plateau and max(rates[-plateau:]) <= max(rates[:-plateau])
            if c < c_min or (unreachable == "best" and stalled):
                if unreachable == "raise":
                    raise RuntimeError(f"no c ≥ {c_min:g} reaches {100 * threshold:.1f}% adversarial error "
                                       f"(trace: {trace})")
                threshold = max(rates)                     # the best the attack can do on this subset
                lo = max(row["c"] for row in trace if row["error_rate"] >= threshold)
                hi = min((row["c"] for row in trace if row["c"] > lo and row["error_rate"] < threshold),
                         default=lo)
                if log:
                    log(f"no c reaches the threshold; aiming at the best error rate seen, {100 * threshold:.2f}%")
                break
            if passes(c):
                lo = c
            else:
                hi = c
    while hi / lo > ratio:                  # (hi == lo: nothing left to bisect)
        mid = math.sqrt(lo * hi)
        if passes(mid):
            lo = mid
        else:
            hi = mid
    return lo, trace
