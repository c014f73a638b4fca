"""bench/attack_launch_count.py: launches and host copies per iteration of the batched attack on the
strict stand-in. With the kernels on, the attack's two CUDA entry points are reached where their
array code would run, and that array code no longer runs."""
import os
import sys

import numpy
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
import attack_launch_count as counter  # noqa: E402  (an import error is a failure, not a skip)

from minidnn.attacks import choose_targets  # noqa: E402
from minidnn.networks import mlp  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def instrumented():
    undo = counter.instrument_attack()
    yield
    undo()                                  # the strict stand-in as the other tests know it


@pytest.fixture(scope="module")
def case():
    rng = numpy.random.default_rng(5)
    net = mlp([16], n_in=36, rng=5)
    x = rng.uniform(0, 1, (12, 36)).astype(numpy.float32)
    labels = net.predict(x)
    return net, x, labels, choose_targets(net, x, labels, "random", rng=5)


def test_the_kernels_replace_the_line_search_and_cumulative_sums(case):
    array_code, copies, passes = counter.count_attack(*case, 0.1, "float64", False)
    fused, fused_copies, fused_passes = counter.count_attack(*case, 0.1, "float64", True)
    assert passes == fused_passes > 0                                # the same iterations either way
    assert fused["Moré-Thuente step (CUDA kernel)"] > 0 and fused["Cauchy cumulative sums (CUDA kernel)"] > 0
    assert array_code["attacks/linesearch.py"] > 10 * fused["attacks/linesearch.py"]
    assert sum(fused.values()) < sum(array_code.values())
    assert sum(copies.values()) == sum(fused_copies.values()) > 0    # the kernels add no synchronisation


def test_undo_puts_back_what_it_replaced():
    from minidnn.attacks import lbfgsb
    strict_xp = counter.strict_xp
    before = (strict_xp.StrictArray.__bool__, strict_xp.StrictArray.get, strict_xp.asnumpy, lbfgsb._iterate)
    undo = counter.instrument_attack()
    assert strict_xp.StrictArray.__bool__ is not before[0] and lbfgsb._iterate is not before[3]
    undo()
    assert (strict_xp.StrictArray.__bool__, strict_xp.StrictArray.get, strict_xp.asnumpy, lbfgsb._iterate) == before
