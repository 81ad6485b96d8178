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
}


@dataclass
class Metric:
    """One figure: its value (median over runs when ``samples`` has several), goal and verdict.

    ``passed`` is None for figures reported for context (no goal).
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
    """The markdown table: scenario, metric, value, goal, verdict; then machine and notes."""
    machine = data.get("machine", {})
    lines = [
        "# rotation-picker benchmarks (latest)",
        "",
        "Reproduce with `./scripts/bench` (one scenario: `--scenario N`; smoke run: `--quick`).",
        "Values are medians over runs; ratios are measured side by side in the same run.",
        "",
        "| # | Scenario | Metric | Value | Goal | Result |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    scenarios = data.get("scenarios", {})
    for key in sorted(scenarios, key=int):
        s = scenarios[key]
        title = TITLES.get(int(key), key)
        if s.get("error"):
            lines.append(f"| {key} | {title} | run failed | {s['error'][:120]} | | **ERROR** |")
        for m in s.get("metrics", []):
            value = fmt(m["value"], m["unit"]) + _samples(Metric(**m))
            lines.append(f"| {key} | {title} | {m['name']} | {value} | {m['goal']} | {_verdict(Metric(**m))} |")
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
        lines += [f"  - {m['name']}: {m['note']}" for m in s.get("metrics", []) if m.get("note")]
    return "\n".join(lines) + "\n"


def write(data: dict[str, Any], directory: Path = RESULTS_DIR) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    json_path, md_path = directory / "latest.json", directory / "latest.md"
    json_path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    md_path.write_text(render(data), encoding="utf-8")
    return md_path, json_path
