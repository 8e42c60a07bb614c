"""Grouping of validated rows into incidents, one chunk of the file at a time.

Rows of the narcotrack template that share a case number are one incident; they may leave
incident-level cells blank (the first row's values apply) but may not contradict each other. UNODC IDS
rows are one incident each: an identical row seen again gets the next ``#n`` reference instead, so that a
seizure reported twice stays two records (and is flagged as a likely duplicate later).
"""

from __future__ import annotations

from typing import Any

from narcotrack.ingest.records import BIT, COMPARED, DEFAULTS, Chunk, Group, I
from narcotrack.ingest.report import ERROR, Issue

_LOCATION = (I["place_id"], I["province_code"], I["district_code"], I["country"])
_DEFAULTS = [(I[name], value) for name, value in DEFAULTS.items()]
CONFLICT = "differs from an earlier row of the same case"


class ChunkBuilder:
    """Collects rows of one chunk; ``take`` hands the finished chunk over and starts the next."""

    def __init__(self, *, merge: bool, columns: dict[str, str], required: tuple[str, ...]) -> None:
        self.merge = merge
        self.columns = columns  # incident field -> column header in the file, for messages
        self.required = required  # incident fields a new incident cannot do without
        self.chunk = Chunk()
        self._groups: dict[str, list[Any]] = {}

    def __len__(self) -> int:
        return self.chunk.rows_read

    def add(
        self,
        row: int,
        ref: str,
        incident: tuple[Any, ...],
        mask: int,
        seizure: tuple[Any, ...],
        place_key: str,
    ) -> None:
        """Add a valid row: ``mask`` says which compared incident fields the row itself filled in."""
        group = self._groups.get(ref)
        if group is None:
            self._groups[ref] = [ref, list(incident), place_key, [(row, mask, seizure)]]
            return
        if not self.merge:
            n = 2
            while f"{ref}#{n}" in self._groups:
                n += 1
            values = list(incident)
            values[I["source_ref"]] = f"{ref}#{n}"
            self._groups[f"{ref}#{n}"] = [f"{ref}#{n}", values, place_key, [(row, mask, seizure)]]
            return
        values = group[1]
        conflicts = []
        for name in COMPARED:
            if not mask & BIT[name]:
                continue
            idx = I[name]
            have, new = values[idx], incident[idx]
            if have is None or have == "":
                continue
            if have != new:
                conflicts.append((name, new, have))
        if conflicts:
            for name, new, have in conflicts:
                self.reject(
                    Issue(
                        row,
                        self.columns.get(name, name),
                        str(new),
                        CONFLICT,
                        ERROR,
                        f"case {ref.split(':', 1)[-1]} has {have}",
                    )
                )
            self.chunk.rows_rejected += 1
            return
        for name in COMPARED:
            if mask & BIT[name] and values[I[name]] in (None, ""):
                if name == "place_id":
                    for idx in _LOCATION:
                        values[idx] = incident[idx]
                else:
                    values[I[name]] = incident[I[name]]
                    if name == "place_text":
                        group[2] = place_key
        seizure = (seizure[0], values[0], *seizure[2:])  # the group's incident id
        group[3].append((row, mask, seizure))

    def reject(self, issue: Issue) -> None:
        self.chunk.issues.append(issue)

    def take(self) -> Chunk:
        chunk = self.chunk
        required = [(I[f], self.columns.get(f, f)) for f in self.required]
        append = chunk.groups.append
        for ref, values, place_key, rows in self._groups.values():
            missing: tuple[str, ...] = ()
            for idx, name in required:
                if values[idx] is None:
                    missing = (*missing, name)
            for idx, default in _DEFAULTS:  # what none of the rows gave (the rows' masks still tell)
                if values[idx] is None:
                    values[idx] = default
            group: Group = (ref, tuple(values), missing, place_key, rows)
            append(group)
        self.chunk = Chunk()
        self._groups = {}
        return chunk
