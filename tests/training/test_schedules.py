"""Learning-rate schedules: epoch → multiplier."""
import math

import pytest

from minidnn.training import make_schedule


def test_schedules_by_name():
    assert [make_schedule("constant", 5)(e) for e in range(3)] == [1.0, 1.0, 1.0]
    assert [make_schedule("step:2:0.5", 9)(e) for e in range(5)] == [1, 1, 0.5, 0.5, 0.25]
    assert make_schedule("step:3", 9)(3) == pytest.approx(0.1)
    assert [make_schedule("exp:0.5", 9)(e) for e in range(3)] == [1, 0.5, 0.25]
    cosine = make_schedule("cosine", 4)
    assert [cosine(e) for e in range(5)] == pytest.approx([1, (1 + math.cos(math.pi / 4)) / 2, 0.5,
                                                           (1 + math.cos(3 * math.pi / 4)) / 2, 0])
    assert make_schedule("cosine:0.1", 4)(4) == pytest.approx(0.1)
    assert make_schedule("cosine", 4)(9) == pytest.approx(0.0)      # clamped after the end


def test_unknown_schedule_is_named():
    with pytest.raises(ValueError, match="'linear'"):
        make_schedule("linear", 3)


@pytest.mark.parametrize("spec, message", [
    ("exp:-1", "exp schedule's factor GAMMA must be > 0"), ("exp:0", "must be > 0"),
    ("step:1:-1", "step schedule's factor GAMMA must be > 0"), ("step:0", "EVERY ≥ 1"),
    ("cosine:1.5", "floor is a share of the base rate in \\[0, 1\\]"), ("step:x", "schedule 'step:x'"),
    ("exp", "unknown schedule 'exp'"),
])
def test_bad_schedules_are_refused(spec, message):
    with pytest.raises(ValueError, match=message):
        make_schedule(spec, 10)
