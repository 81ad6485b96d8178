"""When to restart a worker that died: at once the first time, then after a doubling delay."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RestartBackoff:
    """Per-worker restart delays, so a worker that keeps dying cannot make the host spin.

    The first death after a stable run restarts at once; each further death within
    ``reset_after_s`` of the last start waits ``base_s``, then twice as long, up to ``max_s``.

    Args:
        base_s: delay before the second restart in a row.
        factor: growth of the delay per further death.
        max_s: the longest delay.
        reset_after_s: uptime after which a worker counts as stable again.
    """

    base_s: float = 1.0
    factor: float = 2.0
    max_s: float = 30.0
    reset_after_s: float = 60.0
    _started: dict[str, float] = field(default_factory=dict)
    _deaths: dict[str, int] = field(default_factory=dict)

    def started(self, name: str, now: float) -> None:
        """Record that ``name`` (re)started at ``now`` (monotonic seconds)."""
        self._started[name] = now

    def died(self, name: str, now: float) -> tuple[float, int]:
        """Record a death of ``name`` at ``now``.

        Returns:
            The delay before restarting it, and how many deaths in a row this is.
        """
        started = self._started.get(name)
        if started is not None and now - started >= self.reset_after_s:
            self._deaths[name] = 0
        deaths = self._deaths.get(name, 0) + 1
        self._deaths[name] = deaths
        if deaths == 1:
            return 0.0, deaths
        return min(self.max_s, self.base_s * self.factor ** (deaths - 2)), deaths
