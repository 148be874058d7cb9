"""The benchmark table: one row per measurement, with its target and whether it was met."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass
class Row:
    section: str  # indexing | query | training | memory
    metric: str
    value: str
    target: str = ""
    met: bool | None = None  # None: no target, or not comparable
    note: str = ""
    number: float | None = None  # the value as a number, for --json


@dataclass
class Report:
    machine: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, section: str, metric: str, value: str, target: str = "", met: bool | None = None,
            note: str = "", number: float | None = None) -> None:
        self.rows.append(Row(section, metric, value, target, met, note, number))

    def skip(self, section: str, metric: str, why: str) -> None:
        self.rows.append(Row(section, metric, "skipped", note=why))

    def table(self) -> str:
        headers = ("section", "metric", "value", "target", "ok", "note")
        cells = [(r.section, r.metric, r.value, r.target, _verdict(r.met), r.note) for r in self.rows]
        widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(headers)]
        widths[-1] = len(headers[-1])  # the note runs to the end of the line

        def line(values) -> str:
            return "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()

        rule = "  ".join("-" * w for w in widths)
        out = [f"machine: {self.machine}", "", line(headers), rule, *(line(c) for c in cells)]
        out += [""] + [f"note: {n}" for n in self.notes] if self.notes else []
        return "\n".join(out)

    def to_json(self) -> str:
        return json.dumps({"machine": self.machine, "rows": [asdict(r) for r in self.rows], "notes": self.notes},
                          indent=2)


def _verdict(met: bool | None) -> str:
    return "" if met is None else ("yes" if met else "MISSED")


def percentiles_ms(seconds: list[float]) -> tuple[float, float]:
    """(p50, p95) in milliseconds."""
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def fmt_ms(p50: float, p95: float) -> str:
    return f"p50 {p50:.1f} ms, p95 {p95:.1f} ms"
