"""The demo's wall-clock budget (DEMO_MINUTES): the evaluations after training keep ``TAIL_S``, SCST at least
``SCST_S``; each training stage gets what is left when it starts (its ``train.max_minutes``)."""
from __future__ import annotations

from dataclasses import dataclass

TAIL_S = 90
SCST_S = 180
MIN_STAGE_MINUTES = 0.5  # a stage started late still gets a validation's worth of time


@dataclass(frozen=True)
class Budget:
    total_s: int
    scst: bool  # whether a self-critical stage follows cross-entropy

    @classmethod
    def of_minutes(cls, minutes: int, scst: bool) -> "Budget":
        return cls(total_s=minutes * 60, scst=scst)

    def xe_minutes(self, elapsed_s: int) -> str:
        """train.max_minutes of the cross-entropy stage, started ``elapsed_s`` whole seconds into the run."""
        return self._minutes_left(elapsed_s, SCST_S if self.scst else 0)

    def scst_minutes(self, elapsed_s: int) -> str:
        """train.max_minutes of the self-critical stage: the rest, less the evaluations' share."""
        return self._minutes_left(elapsed_s, 0)

    def _minutes_left(self, elapsed_s: int, reserve_s: int) -> str:
        return f"{max(MIN_STAGE_MINUTES, (self.total_s - (elapsed_s + TAIL_S + reserve_s)) / 60):.2f}"
