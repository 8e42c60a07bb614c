"""What an import did, row by row: counts, errors, warnings and likely duplicates.

A report must stay small however large the file: it keeps counts per reason, a few example values and
the first issues in memory, and spools every issue to a temporary CSV so that the full list can still be
exported (``write_errors_csv``) for the officer who has to fix the file.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NamedTuple

ERROR = "error"
WARNING = "warning"
DUPLICATE = "duplicate"
SEVERITIES = (ERROR, WARNING, DUPLICATE)
KEEP_PER_SEVERITY = 200
_SPOOL_FIELDS = ["row", "column", "value", "reason", "severity"]
EXAMPLES_PER_REASON = 3


class Issue(NamedTuple):
    """One finding about one cell: row as the user sees it (header = row 1), column as in the file."""

    row: int
    column: str
    value: str
    reason: str
    severity: str = ERROR
    detail: str = ""

    def reason_text(self) -> str:
        return f"{self.reason}: {self.detail}" if self.detail else self.reason


@dataclass
class ImportReport:
    """Outcome of one import; ``to_text`` for people, ``write_errors_csv`` for fixing the file."""

    file_name: str
    fmt: str = ""
    sha256: str = ""
    partial: bool = False
    batch_id: str | None = None
    committed: bool = False
    rows_read: int = 0
    rows_imported: int = 0
    rows_already_present: int = 0
    rows_rejected: int = 0
    rows_with_warnings: int = 0
    incidents_created: int = 0
    seizures_created: int = 0
    mass_kg: float = 0.0
    duplicates_flagged: int = 0
    seconds: float = 0.0
    previous_imports: list[str] = field(default_factory=list)
    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    examples: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)
    first: dict[str, list[Issue]] = field(default_factory=lambda: {s: [] for s in SEVERITIES})
    _spool: IO[str] | None = field(default=None, repr=False)
    _writer: csv.DictWriter[str] | None = field(default=None, repr=False)

    # -- collecting -------------------------------------------------------------------------------
    def add(self, issue: Issue) -> None:
        key = (issue.severity, issue.column, issue.reason)
        self.counts[key] += 1
        ex = self.examples.setdefault(key, [])
        if len(ex) < EXAMPLES_PER_REASON and issue.value not in ex:
            ex.append(issue.value)
        kept = self.first[issue.severity]
        if len(kept) < KEEP_PER_SEVERITY:
            kept.append(issue)
        if self._writer is None:
            self._spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - closed by close()
                max_size=1 << 20, mode="w+", encoding="utf-8", newline=""
            )
            self._writer = csv.DictWriter(self._spool, fieldnames=_SPOOL_FIELDS)
        self._writer.writerow(
            {
                "row": issue.row,
                "column": issue.column,
                "value": issue.value,
                "reason": issue.reason_text(),
                "severity": issue.severity,
            }
        )

    def extend(self, issues: Iterable[Issue]) -> None:
        for issue in issues:
            self.add(issue)

    # -- reading ----------------------------------------------------------------------------------
    def count(self, severity: str) -> int:
        return sum(n for (sev, _c, _r), n in self.counts.items() if sev == severity)

    @property
    def errors(self) -> list[Issue]:
        """The first errors (at most KEEP_PER_SEVERITY); ``iter_issues`` gives them all."""
        return list(self.first[ERROR])

    @property
    def warnings(self) -> list[Issue]:
        return list(self.first[WARNING])

    @property
    def duplicates(self) -> list[Issue]:
        return list(self.first[DUPLICATE])

    def iter_issues(self, severities: tuple[str, ...] = SEVERITIES) -> Iterator[Issue]:
        """Every issue of the given severities, in the order found (read back from the spool)."""
        if self._spool is None:
            return
        self._spool.flush()
        self._spool.seek(0)
        try:
            for r in csv.DictReader(self._spool, fieldnames=_SPOOL_FIELDS):
                if r["severity"] in severities:
                    yield Issue(int(r["row"]), r["column"], r["value"], r["reason"], r["severity"])
        finally:
            self._spool.seek(0, io.SEEK_END)

    def write_errors_csv(self, target: Path | str | IO[str], *, include_warnings: bool = False) -> int:
        """Write every error (and optionally every warning and duplicate) as ``row,column,value,reason``.

        Returns the number of lines written. With warnings included a fifth column says the severity.
        """
        severities = SEVERITIES if include_warnings else (ERROR,)
        fields = ["row", "column", "value", "reason", *(["severity"] if include_warnings else [])]
        if isinstance(target, (str, Path)):
            with open(target, "w", encoding="utf-8-sig", newline="") as fh:
                return self._write_csv(fh, fields, severities)
        return self._write_csv(target, fields, severities)

    def _write_csv(self, fh: IO[str], fields: list[str], severities: tuple[str, ...]) -> int:
        writer = csv.writer(fh)
        writer.writerow(fields)
        n = 0
        for issue in self.iter_issues(severities):
            writer.writerow(
                [issue.row, issue.column, issue.value, issue.reason, issue.severity][: len(fields)]
            )
            n += 1
        return n

    # -- rendering --------------------------------------------------------------------------------
    def to_text(self, max_issues: int = 20) -> str:
        """A summary a person can read: counts, then issues grouped by reason, then the first errors."""
        fmt_name = {"ids": "UNODC Individual Drug Seizures", "narcotrack": "narcotrack template"}
        title = f"Import of {self.file_name}" + (f" ({fmt_name.get(self.fmt, self.fmt)})" if self.fmt else "")
        outcome = "imported" if self.committed else "NOT imported: nothing was changed in the store"
        lines = [title, f"  outcome            {outcome}", f"  rows read          {self.rows_read:,}"]
        if self.committed:
            lines += [
                f"  rows imported      {self.rows_imported:,} ({self.incidents_created:,} incidents, "
                f"{self.seizures_created:,} seizures, {self.mass_kg:,.3f} kg)",
                f"  already present    {self.rows_already_present:,}",
            ]
        lines += [
            f"  rows with errors   {self.rows_rejected:,}" + (" (skipped)" if self.committed else ""),
            f"  rows with warnings {self.rows_with_warnings:,} (imported as reported; see below)",
            f"  likely duplicates  {self.duplicates_flagged:,} seizures flagged (kept, not merged)",
        ]
        if self.previous_imports:
            lines.append(f"  note: this same file was imported before ({', '.join(self.previous_imports)})")
        for severity, heading in ((ERROR, "Errors"), (WARNING, "Warnings"), (DUPLICATE, "Likely duplicates")):
            groups = sorted(((n, key) for key, n in self.counts.items() if key[0] == severity), reverse=True)
            if not groups:
                continue
            lines.append(f"{heading} by reason:")
            for n, key in groups[:max_issues]:
                examples = ", ".join(repr(v) for v in self.examples.get(key, []))
                lines.append(f"  {n:>8,}  {key[1]}: {key[2]}" + (f" (e.g. {examples})" if examples else ""))
            if len(groups) > max_issues:
                lines.append(f"  ... and {len(groups) - max_issues} more reasons")
        errors = self.first[ERROR]
        if errors:
            lines.append(f"First {min(len(errors), max_issues)} of {self.count(ERROR):,} errors:")
            for issue in errors[:max_issues]:
                lines.append(
                    f"  row {issue.row}, column {issue.column!r}, value {issue.value!r}: "
                    f"{issue.reason_text()}"
                )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None
            self._writer = None
