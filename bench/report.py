"""Medians over rounds, candidate/reference ratios, and the markdown tables."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Sequence

Slot = Literal["candidate", "reference"]
SLOTS: tuple[Slot, Slot] = ("candidate", "reference")
Sample = dict[str, float]
DASH = "\u2013"  # en dash: "no figure", and in min-max ranges


@dataclass(frozen=True, slots=True)
class Target:
    """A goal for one figure; reported as PASS/MISS, never enforced."""

    text: str
    ratio_at_least: float | None = None  # candidate/reference of the main figure
    candidate_below: float | None = None  # absolute, for the candidate alone
    # The candidate's server CPU per GB in this row is at most its figure in that row.
    cpu_at_most_row: str | None = None

    def verdict(self, ratio: float | None, candidate: float | None) -> str:
        if self.ratio_at_least is not None and ratio is not None:
            passed = ratio >= self.ratio_at_least
        elif self.candidate_below is not None and candidate is not None:
            passed = candidate < self.candidate_below
        else:
            return f"{self.text}: n/a"
        return f"{self.text}: **{'PASS' if passed else 'MISS'}**"


@dataclass(frozen=True, slots=True)
class Row:
    key: str
    kind: Literal["load", "transfer", "rss"]
    title: str
    target: Target | None = None
    # Reference figures to compare with when the reference cannot do this at all
    # (Distribution has no single-POST upload).
    reference_fallback: str | None = None


@dataclass(slots=True)
class Results:
    labels: dict[Slot, str]
    samples: dict[str, dict[Slot, list[Sample]]] = field(default_factory=dict)
    notes: dict[str, dict[Slot, str]] = field(default_factory=dict)

    def add(self, key: str, slot: Slot, sample: Sample) -> None:
        self.samples.setdefault(key, {"candidate": [], "reference": []})[slot].append(
            sample
        )

    def note(self, key: str, slot: Slot, text: str) -> None:
        self.notes.setdefault(key, {})[slot] = text

    def values(self, key: str, slot: Slot, metric: str) -> list[float]:
        return [s[metric] for s in self.samples.get(key, {}).get(slot, [])]

    def median(self, key: str, slot: Slot, metric: str) -> float | None:
        values = self.values(key, slot, metric)
        return statistics.median(values) if values else None

    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        out: dict[str, dict[str, dict[str, float]]] = {}
        for key, by_slot in self.samples.items():
            for slot, samples in by_slot.items():
                if samples:
                    out.setdefault(key, {})[slot] = {
                        metric: statistics.median(s[metric] for s in samples)
                        for metric in samples[0]
                    }
        return out


def _num(value: float | None, digits: int = 0) -> str:
    return DASH if value is None else f"{value:,.{digits}f}"


def _ratio(candidate: float | None, reference: float | None) -> float | None:
    if candidate is None or reference is None or reference == 0:
        return None
    return candidate / reference


def _ratio_text(ratio: float | None) -> str:
    return DASH if ratio is None else f"{ratio:.2f}x"


def _spread(results: Results, key: str, slot: Slot, metric: str, digits: int) -> str:
    values = results.values(key, slot, metric)
    if not values:
        return results.notes.get(key, {}).get(slot, DASH)
    median = _num(statistics.median(values), digits)
    if len(values) < 3:
        return median
    return f"{median} ({_num(min(values), digits)}{DASH}{_num(max(values), digits)})"


def _pair(results: Results, key: str, metric: str, digits: int) -> str:
    c, r = (results.median(key, slot, metric) for slot in SLOTS)
    return f"{_num(c, digits)} / {_num(r, digits)}"


def _problems(results: Results, key: str) -> str:
    flagged = []
    for slot in SLOTS:
        failed = sum(results.values(key, slot, "failed"))
        errors = sum(results.values(key, slot, "errors"))
        if failed or errors:
            flagged.append(
                f"{results.labels[slot]}: {failed:.0f} 4xx/5xx, {errors:.0f} errors"
            )
    return " ⚠ " + "; ".join(flagged) if flagged else ""


def load_table(results: Results, rows: Sequence[Row]) -> list[str]:
    c_label, r_label = results.labels["candidate"], results.labels["reference"]
    lines = [
        (
            f"| request | req/s {c_label} | req/s {r_label} | **ratio** | target "
            "| p50 ms (c / r) | p99 ms (c / r) | server CPU µs/req (c / r) "
            "| CPU ratio | client µs/req (c / r) |"
        ),
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        c, r = (results.median(row.key, slot, "rps") for slot in SLOTS)
        ratio = _ratio(c, r)
        cpu_c, cpu_r = (
            results.median(row.key, slot, "server_us_per_request") for slot in SLOTS
        )
        target = row.target.verdict(ratio, c) if row.target else ""
        lines.append(
            f"| {row.title}{_problems(results, row.key)} "
            f"| {_spread(results, row.key, 'candidate', 'rps', 0)} "
            f"| {_spread(results, row.key, 'reference', 'rps', 0)} "
            f"| **{_ratio_text(ratio)}** | {target} "
            f"| {_pair(results, row.key, 'p50_ms', 2)} "
            f"| {_pair(results, row.key, 'p99_ms', 1)} "
            f"| {_num(cpu_c)} / {_num(cpu_r)} | {_ratio_text(_ratio(cpu_c, cpu_r))} "
            f"| {_pair(results, row.key, 'client_us_per_request', 0)} |"
        )
    return lines


def transfer_table(results: Results, rows: Sequence[Row]) -> list[str]:
    c_label, r_label = results.labels["candidate"], results.labels["reference"]
    lines = [
        (
            f"| transfer | MB/s {c_label} | MB/s {r_label} | **ratio** | target "
            "| server CPU-s/GB (c / r) | CPU ratio | client CPU-s/GB (c / r) |"
        ),
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    footnotes: list[str] = []
    for row in rows:
        ref_key = row.key
        mark = ""
        if (
            not results.values(row.key, "reference", "mb_per_s")
            and row.reference_fallback
        ):
            ref_key = row.reference_fallback
            mark = " †"
            footnotes.append(
                f"† {r_label} cannot do this (it answers 202 and ignores the body); "
                f"its figures here are from row `{ref_key}`."
            )
        c = results.median(row.key, "candidate", "mb_per_s")
        r = results.median(ref_key, "reference", "mb_per_s")
        ratio = _ratio(c, r)
        cpu_c = results.median(row.key, "candidate", "server_cpu_s_per_gb")
        cpu_r = results.median(ref_key, "reference", "server_cpu_s_per_gb")
        cli_c = results.median(row.key, "candidate", "client_cpu_s_per_gb")
        cli_r = results.median(ref_key, "reference", "client_cpu_s_per_gb")
        target = _transfer_verdict(results, row, ratio, c, cpu_c)
        lines.append(
            f"| {row.title} ({row.key}) "
            f"| {_spread(results, row.key, 'candidate', 'mb_per_s', 0)} "
            f"| {_spread(results, ref_key, 'reference', 'mb_per_s', 0)}{mark} "
            f"| **{_ratio_text(ratio)}** | {target} "
            f"| {_num(cpu_c, 2)} / {_num(cpu_r, 2)} "
            f"| {_ratio_text(_ratio(cpu_c, cpu_r))} "
            f"| {_num(cli_c, 2)} / {_num(cli_r, 2)} |"
        )
    return lines + (["", *sorted(set(footnotes))] if footnotes else [])


def _transfer_verdict(
    results: Results,
    row: Row,
    ratio: float | None,
    candidate: float | None,
    cpu: float | None,
) -> str:
    if row.target is None:
        return ""
    other_row = row.target.cpu_at_most_row
    if other_row is None:
        return row.target.verdict(ratio, candidate)
    other = results.median(other_row, "candidate", "server_cpu_s_per_gb")
    if cpu is None or other is None:
        return f"{row.target.text}: n/a"
    passed = cpu <= other
    return (
        f"{row.target.text}: **{'PASS' if passed else 'MISS'}** "
        f"({cpu:.2f} vs {other:.2f})"
    )


# (title, metric, show min-max)
_RSS_FIGURES = (
    ("idle RSS before the uploads, MiB", "idle_rss_mib", False),
    ("peak RSS, sampled every 20 ms, MiB", "peak_rss_mib", False),
    ("**sum of VmHWM over the process tree during the uploads, MiB**", "hwm_mib", True),
    ("upload MB/s during the test", "mb_per_s", True),
    ("processes in the tree", "processes", False),
)


def rss_table(results: Results, row: Row) -> list[str]:
    c_label, r_label = results.labels["candidate"], results.labels["reference"]
    lines = [
        f"| {row.title} | {c_label} | {r_label} | ratio | target |",
        "|---|---:|---:|---:|---|",
    ]
    for title, metric, with_range in _RSS_FIGURES:
        c, r = (results.median(row.key, slot, metric) for slot in SLOTS)
        target = ""
        if metric == "hwm_mib" and row.target:
            target = row.target.verdict(None, c)
        if with_range:
            cells = [_spread(results, row.key, slot, metric, 0) for slot in SLOTS]
        else:
            cells = [_num(c), _num(r)]
        lines.append(
            f"| {title} | {cells[0]} | {cells[1]} "
            f"| {_ratio_text(_ratio(c, r))} | {target} |"
        )
    return lines


def markdown(results: Results, rows: Sequence[Row], header: Sequence[str]) -> str:
    lines = list(header)
    measured = [row for row in rows if row.key in results.samples | results.notes]
    loads = [row for row in measured if row.kind == "load"]
    transfers = [row for row in measured if row.kind == "transfer"]
    rss = [row for row in measured if row.kind == "rss"]
    if loads:
        lines += ["", *load_table(results, loads)]
    if transfers:
        lines += ["", *transfer_table(results, transfers)]
    for row in rss:
        lines += ["", *rss_table(results, row)]
    failed = [
        f"{key} on {results.labels[slot]}"
        for key, by_slot in results.notes.items()
        for slot, note in by_slot.items()
        if note == "error"
    ]
    if failed:
        lines += ["", f"Failed measurements (see the log): {', '.join(failed)}."]
    return "\n".join(lines) + "\n"
