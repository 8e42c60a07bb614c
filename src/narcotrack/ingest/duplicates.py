"""Likely duplicate seizures inside one file: the same seizure reported twice, perhaps in another unit.

Two seizures with the same date, place and drug but reported in different units are compared by mass
where both convert to kg (within ``TOLERANCE``, since tablet weights are assumed: 9,884 tablets of yaba
and 0.8896 kg); where one of them has no mass, the different unit alone is the signal (2,786 tablets and
2.786 kg of buprenorphine at the same airport on the same day). Seizures in the same unit are not
compared: in UNODC's own data, countries such as Colombia and Bolivia report many seizures of the same
standard amount on the same day and place, and flagging those would bury the real double reports.
Duplicates are flagged, never merged or dropped: the analyst decides.
"""

from __future__ import annotations

from collections.abc import Iterator

from narcotrack.ingest.writer import DupRow

TOLERANCE = 0.02  # relative difference of mass still taken as 'the same amount'
LOOK_BACK = 200  # compare with at most this many earlier rows of the same key


def equivalent(a: DupRow, b: DupRow) -> str | None:
    """Why ``b`` looks like a second report of ``a``, or None."""
    if a.unit == b.unit:
        return None
    if a.kg is not None and b.kg is not None:
        if abs(a.kg - b.kg) <= TOLERANCE * max(a.kg, b.kg):
            return f"equivalent amount in another unit ({a.kg:.6g} kg and {b.kg:.6g} kg)"
        return None
    return "same date, place and drug reported in another unit"


def find(group: list[DupRow]) -> Iterator[tuple[DupRow, DupRow, str]]:
    """(original, duplicate, why) for each row of a key group that repeats an earlier row."""
    for j in range(1, len(group)):
        b = group[j]
        for a in group[max(0, j - LOOK_BACK) : j]:
            why = equivalent(a, b)
            if why is not None:
                yield a, b, why
                break
