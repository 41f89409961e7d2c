"""The denial circuit breaker: a turn whose actions keep being denied is stopped.

A model that is denied tends to try variations of the same thing. As the reference does, after
3 denials in a row, or 10 among the last 50 reviews of one turn, the thread's subscribers get a
``guardianWarning`` and the turn is interrupted, once per turn; the person decides what next.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

__all__ = ["MAX_CONSECUTIVE_DENIALS", "MAX_RECENT_DENIALS", "WINDOW", "DenialBreaker"]

MAX_CONSECUTIVE_DENIALS = 3
MAX_RECENT_DENIALS = 10
WINDOW = 50


@dataclass(slots=True)
class _TurnOutcomes:
    turn_id: str
    consecutive: int = 0
    recent: deque[bool] = field(default_factory=lambda: deque(maxlen=WINDOW))
    tripped: bool = False


class DenialBreaker:
    """The review outcomes of each thread's current turn."""

    def __init__(self) -> None:
        self._threads: dict[str, _TurnOutcomes] = {}

    def record(self, thread_id: str, turn_id: str, *, denied: bool) -> str | None:
        """Count one review; returns the warning when this denial trips the breaker."""
        state = self._threads.get(thread_id)
        if state is None or state.turn_id != turn_id:
            state = self._threads[thread_id] = _TurnOutcomes(turn_id)
        state.recent.append(denied)
        state.consecutive = state.consecutive + 1 if denied else 0
        recent = sum(state.recent)
        if state.tripped or not denied:
            return None
        if state.consecutive < MAX_CONSECUTIVE_DENIALS and recent < MAX_RECENT_DENIALS:
            return None
        state.tripped = True
        return (  # the reference's wording, which clients may match
            "Automatic approval review rejected too many approval requests for this turn "
            f"({state.consecutive} consecutive, {recent} in the last {WINDOW} reviews); "
            "interrupting the turn."
        )
