"""Benchmark figures and the results files: ``bench/results/latest.md`` and ``latest.json``."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"

TITLES = {
    1: "Warm picker vs framework floor",
    2: "Cold vs warm first open",
    3: "Walk cost vs LML bound",
    4: "LML cost vs worker count",
    5: "Restart",
    6: "Scale",
    7: "Live traffic during a walk",
    8: "DJ during the walk at the production rate",
    9: "Warm across deploys",
    10: "Metrics on vs off",
}

# Each scenario's goals in one line (the metrics carry the exact thresholds and verdicts).
GOALS = {
    1: "picker ≥ 0.8 x floor throughput; p99 ≤ 5 ms at half max; no LML call, no table scan while warm",
    2: "warm first open ≪ cold (informational); no LML call once warm",
    3: "walk ≤ 1.10 x (LML calls x L); tier-1/2 overhead ≤ 1 ms per row",
    4: "the same LML lookups and release fetches for 1, 2 and 4 workers",
    5: "a reloaded worker is warm ≤ 50 ms after it starts, with no LML call",
    6: "walk time per row flat (30,000 / 310 ≤ 1.25); caches hold every row (no eviction); no LML call while warm",
    7: "live first-open p99 during a walk ≤ 1.2 x without one",
    8: "at 50 LML calls/min during a cold walk, a DJ's first opens: p99 ≤ 1 s, no empty answer",
    9: "host launch to every worker warm ≤ 1 s at 30,000 stored answers; 0 LML calls per redeploy",
    10: "warm-hit throughput with metrics on (scraped every 5 s) ≥ 0.95 x off",
}


@dataclass
class Metric:
    """One figure: its value (median over runs when ``samples`` has several), goal and verdict.

    ``passed`` is None for figures reported for context (no goal); ``note`` is shown beside it.
    """

    name: str
    value: float | int | str | None
    unit: str = ""
    goal: str = ""
    passed: bool | None = None
    samples: list[float] = field(default_factory=list)
    note: str = ""


@dataclass
class ScenarioResult:
    scenario: int
    metrics: list[Metric] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    mode: str = "full"
    runs: int = 1
    ran_at: str = ""
    elapsed_s: float = 0.0
    error: str | None = None

    def add(self, name: str, value: float | int | str | None, unit: str = "", **kw: Any) -> Metric:
        metric = Metric(name, value, unit, **kw)
        self.metrics.append(metric)
        return metric


def median(values: Sequence[float]) -> float | None:
    clean = [v for v in values if v is not None]
    return statistics.median(clean) if clean else None


def fmt(value: float | int | str | None, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        text = f"{value:.3f}" if abs(value) < 10 else f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = value
    return f"{text} {unit}".strip()


def _verdict(metric: Metric) -> str:
    return "" if metric.passed is None else ("pass" if metric.passed else "**MISS**")


def _samples(metric: Metric) -> str:
    if len(metric.samples) < 2:
        return ""
    return " (runs: " + ", ".join(fmt(round(s, 3) if isinstance(s, float) else s) for s in metric.samples) + ")"


def load(path: Path = RESULTS_DIR / "latest.json") -> dict[str, Any]:
    if not path.exists():
        return {"scenarios": {}}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    data.setdefault("scenarios", {})
    return data


def merge(data: dict[str, Any], result: ScenarioResult, machine: dict[str, Any]) -> dict[str, Any]:
    """Replace one scenario's entry (other scenarios keep the figures of their last run)."""
    entry = asdict(result)
    entry["machine"] = machine
    data["scenarios"][str(result.scenario)] = entry
    data["machine"] = machine
    return data


def render(data: dict[str, Any]) -> str:
    """The markdown table (scenario, metric, value, goal, verdict, note); then goals, machine and notes."""
    machine = data.get("machine", {})
    lines = [
        "# rotation-picker benchmarks (latest)",
        "",
        "Reproduce with `./scripts/bench` (one scenario: `--scenario N`; smoke run: `--quick`).",
        "Values are medians over runs; ratios are measured side by side in the same run.",
        "",
        "| # | Scenario | Metric | Value | Goal | Result | Notes |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    scenarios = data.get("scenarios", {})
    for key in sorted(scenarios, key=int):
        s = scenarios[key]
        title = TITLES.get(int(key), key)
        if s.get("error"):
            lines.append(f"| {key} | {title} | run failed | {_cell(s['error'][:160])} | | **ERROR** | |")
        for m in s.get("metrics", []):
            metric = Metric(**m)
            value = fmt(metric.value, metric.unit) + _samples(metric)
            cells = (key, title, metric.name, value, metric.goal, _verdict(metric), _cell(metric.note))
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Goals", ""]
    lines += [f"- **{n}. {TITLES[n]}**: {GOALS[n]}." for n in sorted(TITLES)]
    lines += ["", "## Machine", ""]
    lines += [f"- {k}: {v}" for k, v in machine.items()]
    lines += ["", "## Notes", ""]
    for key in sorted(scenarios, key=int):
        s = scenarios[key]
        when = (
            f"{s.get('ran_at', '')}, {s.get('mode', '')} mode, {s.get('runs', 1)} run(s), {s.get('elapsed_s', 0):.0f} s"
        )
        lines.append(f"- **{key}. {TITLES.get(int(key), key)}** ({when}).")
        lines += [f"  - {note}" for note in s.get("notes", [])]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def write(data: dict[str, Any], directory: Path = RESULTS_DIR) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    json_path, md_path = directory / "latest.json", directory / "latest.md"
    json_path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    md_path.write_text(render(data), encoding="utf-8")
    return md_path, json_path
