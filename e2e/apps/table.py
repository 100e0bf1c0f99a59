"""The suite's table: one row per program (what the README keeps). Its own module, so
that the tests and conftest.py (which pytest imports under another name) share one list."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Row:
    program: str
    works: str  # "yes", "detected: ...", "NO: ..."
    measure: str = ""
    vpp: float | None = None
    kernel: float | None = None

    @property
    def ratio(self) -> str:
        if not self.vpp or not self.kernel:
            return ""
        return f"{self.vpp / self.kernel:.2f}x"


ROWS: list[Row] = []


def record(row: Row) -> None:
    ROWS.append(row)


def measured(
    program: str, failures: list[str], measure: str, vpp: float | None, kernel: float | None
) -> None:
    """A measured program's row: "yes", or "NO" with its first failure, and its figures."""
    works = "yes" if not failures else f"NO: {failures[0][:120]}"
    record(Row(program, works, measure, vpp, kernel))


def table() -> str:
    lines = [
        "| program | through VPP | measure | VPP | kernel | VPP / kernel |",
        "|---|---|---|---|---|---|",
    ]
    for r in ROWS:
        fmt = lambda v: "" if v is None else f"{v:,.1f}"  # noqa: E731
        lines.append(
            f"| {r.program} | {r.works} | {r.measure} | {fmt(r.vpp)} | {fmt(r.kernel)} | {r.ratio} |"
        )
    return "\n".join(lines)
