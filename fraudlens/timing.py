"""Wall and CPU time of the phases of a long step: for its log line, and for the benchmark to
say where the time of a slow step goes."""

from __future__ import annotations

import time


class Phases:
    """Laps of one step: each :meth:`lap` records the wall and CPU seconds since the one before.

    CPU seconds are the whole process's, on every thread (DuckDB's and numba's included), so
    CPU over wall says how many cores a phase kept busy.
    """

    def __init__(self) -> None:
        self.laps: dict[str, tuple[float, float]] = {}
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def lap(self, name: str) -> None:
        """Record the time since the last lap as ``name`` (added to it, if it ran before)."""
        wall, cpu = time.perf_counter(), time.process_time()
        before_wall, before_cpu = self.laps.get(name, (0.0, 0.0))
        self.laps[name] = (before_wall + wall - self._wall, before_cpu + cpu - self._cpu)
        self._wall, self._cpu = wall, cpu

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {name: {"seconds": round(wall, 3), "cpu_seconds": round(cpu, 3)}
                for name, (wall, cpu) in self.laps.items()}

    def __str__(self) -> str:
        return ", ".join(f"{name} {wall:.1f} s ({cpu / wall if wall else 0:.1f} cores)"
                         for name, (wall, cpu) in self.laps.items())
