"""Phases: laps of wall and CPU time, added up when a phase runs more than once."""

from __future__ import annotations

from types import SimpleNamespace

from fraudlens import timing
from fraudlens.timing import Phases


def test_laps_add_up_per_name_in_first_seen_order(monkeypatch):
    wall, cpu = iter([0.0, 1.0, 1.5, 4.0]), iter([0.0, 2.0, 2.5, 3.0])
    clocks = SimpleNamespace(perf_counter=lambda: next(wall), process_time=lambda: next(cpu))
    monkeypatch.setattr(timing, "time", clocks)
    clock = Phases()
    clock.lap("read")  # 1 s, 2 CPU-s
    clock.lap("write")  # 0.5 s, 0.5 CPU-s
    clock.lap("read")  # 2.5 s more, 0.5 CPU-s more
    assert clock.as_dict() == {"read": {"seconds": 3.5, "cpu_seconds": 2.5},
                               "write": {"seconds": 0.5, "cpu_seconds": 0.5}}
    assert str(clock) == "read 3.5 s (0.7 cores), write 0.5 s (1.0 cores)"
