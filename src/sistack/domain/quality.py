"""The data-quality report: every row excluded and every value changed, with its reason and count.

Nothing is dropped or altered without an entry here. Row numbers are 1-based data rows (the
first row after the header is row 1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl

EXCLUDED = "excluded"  # a whole row was not used
CHANGED = "changed"  # a value was altered (imputed, clipped, cleaned)
WARNING = "warning"  # nothing was altered, but a person should know

MAX_EXAMPLE_ROWS = 10


@dataclass(frozen=True)
class QualityIssue:
    """One reason rows were excluded or values changed, with how many and example rows."""

    kind: str
    code: str
    column: str | None
    count: int
    rows: tuple[int, ...]
    message: str


@dataclass(frozen=True)
class QualityReport:
    """What happened to the input on its way to the customer table."""

    rows_read: int
    rows_used: int
    issues: tuple[QualityIssue, ...]

    @property
    def rows_excluded(self) -> int:
        return sum(i.count for i in self.issues if i.kind == EXCLUDED)

    def codes(self) -> list[str]:
        return [i.code for i in self.issues]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows_read": self.rows_read,
            "rows_used": self.rows_used,
            "rows_excluded": self.rows_excluded,
            "issues": [asdict(i) for i in self.issues],
        }

    def with_warnings(self, warnings: list[tuple[str, str]]) -> QualityReport:
        """The report with file-level warnings (``(code, message)``, e.g. the reader's
        encoding fallback) listed first: nothing was dropped for them, but a person should
        know before trusting the numbers."""
        first = tuple(
            QualityIssue(WARNING, code, None, 0, (), message) for code, message in warnings
        )
        return QualityReport(self.rows_read, self.rows_used, first + self.issues)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QualityReport:
        issues = tuple(
            QualityIssue(**{**i, "rows": tuple(i["rows"])}) for i in data.get("issues", [])
        )
        return cls(rows_read=data["rows_read"], rows_used=data["rows_used"], issues=issues)


@dataclass
class QualityLog:
    """Collects issues while a table is validated; ``report`` freezes them."""

    issues: list[QualityIssue] = field(default_factory=list)

    def add(
        self,
        kind: str,
        code: str,
        message: str,
        *,
        column: str | None = None,
        rows: pl.Series | None = None,
        count: int | None = None,
    ) -> None:
        """Record an issue; ``rows`` is a series of 1-based row numbers it affected."""
        n = count if count is not None else (rows.len() if rows is not None else 0)
        if n == 0 and kind != WARNING:
            return
        examples = tuple(int(r) for r in rows.head(MAX_EXAMPLE_ROWS)) if rows is not None else ()
        self.issues.append(QualityIssue(kind, code, column, int(n), examples, message))

    def warn(self, code: str, message: str, *, column: str | None = None) -> None:
        self.add(WARNING, code, message, column=column, count=0)

    def report(self, *, rows_read: int, rows_used: int) -> QualityReport:
        return QualityReport(rows_read=rows_read, rows_used=rows_used, issues=tuple(self.issues))
