"""The benchmark scenarios (issue 5's seven, then 8-10), one module each, registered by number."""

from __future__ import annotations

from collections.abc import Callable

from bench.context import BenchContext
from bench.results import ScenarioResult
from bench.scenarios import (
    s1_floor,
    s2_first_open,
    s3_walk_bound,
    s4_workers,
    s5_restart,
    s6_scale,
    s7_live_during_walk,
    s8_dj_during_walk,
    s9_deploys,
    s10_metrics,
)

SCENARIOS: dict[int, Callable[[BenchContext, ScenarioResult], None]] = {
    1: s1_floor.run,
    2: s2_first_open.run,
    3: s3_walk_bound.run,
    4: s4_workers.run,
    5: s5_restart.run,
    6: s6_scale.run,
    7: s7_live_during_walk.run,
    8: s8_dj_during_walk.run,
    9: s9_deploys.run,
    10: s10_metrics.run,
}
