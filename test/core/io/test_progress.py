"""Progress sub-ranges and cancellation."""

import pytest

from glacier_velocity.core.errors import Cancelled
from glacier_velocity.core.progress import Progress


def test_sub_ranges_map_onto_parent():
    seen = []
    p = Progress(seen.append)
    child = p.sub(0.5, 1.0).sub(0.0, 0.5)
    child.update(0.5)
    child.update(2.0)  # clipped
    assert seen == [pytest.approx(0.625), pytest.approx(0.75)]


def test_cancel_raises():
    flag = {"stop": False}
    p = Progress(None, lambda: flag["stop"])
    p.update(0.1)
    flag["stop"] = True
    with pytest.raises(Cancelled):
        p.sub(0, 0.5).update(0.2)
