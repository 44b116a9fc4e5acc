"""Phases: laps of wall and CPU time, added up when a phase runs more than once."""

from __future__ import annotations

from fraudlens.timing import Phases


def spin(seconds: float) -> None:
    import time
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_laps_add_up_per_name_in_first_seen_order():
    clock = Phases()
    spin(0.01)
    clock.lap("read")
    spin(0.01)
    clock.lap("write")
    spin(0.01)
    clock.lap("read")
    laps = clock.as_dict()
    assert list(laps) == ["read", "write"]
    assert laps["read"]["seconds"] >= 0.02 > laps["write"]["seconds"] >= 0.01
    # A busy loop on one thread keeps about one core busy.
    assert 0 < laps["read"]["cpu_seconds"] <= laps["read"]["seconds"] * 1.5
    assert str(clock).startswith("read 0.0 s (") and "write" in str(clock)
