"""TLP 2.0 marking definitions as STIX 2.1 objects.

The ``stix2`` library ships only TLP 1.0 (WHITE, GREEN, AMBER, RED). TLP 2.0 markings are defined by the
FIRST/OASIS extension ``extension-definition--60a3c5c5-…``; the ids below are the ones published with
that extension, so a partner's tools (MISP, OpenCTI) recognise them without a lookup. The marking a
record carries maps one to one to its STIX marking.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import stix2

TLP2_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP2_CREATED = "2022-10-01T00:00:00.000Z"
TLP2_IDS = {
    "CLEAR": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "GREEN": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "AMBER": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "AMBER+STRICT": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "RED": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
MARKING_OF = {v: k for k, v in TLP2_IDS.items()}
# TLP 1.0 ids that partners' older tools still send: read as their TLP 2.0 equivalents.
MARKING_OF.update({
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": "CLEAR",
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": "GREEN",
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": "AMBER",
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": "RED",
})
NEVER_EXPORTED = frozenset({"RED"})


@cache
def marking_definition(marking: str) -> stix2.MarkingDefinition:
    """The TLP 2.0 marking-definition object of a narcotrack marking (CLEAR … RED)."""
    return stix2.MarkingDefinition(
        id=TLP2_IDS[marking],
        created=TLP2_CREATED,
        name=f"TLP:{marking}",
        extensions={TLP2_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": marking.lower()}},
    )


def marking_of(refs: list[str] | None) -> str | None:
    """The strictest TLP marking among an object's ``object_marking_refs`` (None when it has none)."""
    order = ["CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"]
    found = [MARKING_OF[r] for r in refs or [] if r in MARKING_OF]
    return max(found, key=order.index) if found else None


def marking_dicts() -> dict[str, dict[str, Any]]:
    """Every TLP 2.0 marking-definition as a plain dict, keyed by id."""
    return {TLP2_IDS[m]: dict(marking_definition(m)) for m in TLP2_IDS}
