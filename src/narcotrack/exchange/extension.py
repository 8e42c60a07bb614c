"""narcotrack's STIX 2.1 extension definition and the JSON Schema its properties follow.

One property extension carries what STIX has no property for (seizures and arrests of an incident, the
gazetteer code of a location, the sharing terms of a record). The schema lives in
``schemas/narcotrack-extension.json``; the extension-definition object embeds it, so a partner has the
normative definition in every bundle and needs nothing fetched. Its id and version are fixed: changing
the schema means a new version and a new id.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
import stix2

from narcotrack.exchange.ids import stix_uuid

EXTENSION_VERSION = "1.0.0"
EXTENSION_ID = f"extension-definition--{stix_uuid('extension-definition', 'narcotrack', EXTENSION_VERSION)}"
PRODUCER_ID = f"identity--{stix_uuid('identity', 'narcotrack-project')}"
PRODUCED = "2026-12-01T00:00:00.000Z"


@cache
def schema() -> dict[str, Any]:
    text = (resources.files("narcotrack.exchange") / "schemas" / "narcotrack-extension.json").read_text("utf-8")
    return dict(json.loads(text))


@cache
def _validator(kind: str) -> jsonschema.Draft202012Validator:
    full = schema()
    return jsonschema.Draft202012Validator({"$defs": full["$defs"], "$ref": f"#/$defs/{kind}"})


def extension_errors(kind: str, props: dict[str, Any]) -> list[str]:
    """What is wrong with the extension properties of an object of ``kind`` (incident, individual, …)."""
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(extension)'}: {e.message}"
        for e in _validator(kind).iter_errors(props)
    ]


@cache
def producer() -> stix2.Identity:
    """The identity that publishes the extension: narcotrack itself, not any agency."""
    return stix2.Identity(id=PRODUCER_ID, created=PRODUCED, modified=PRODUCED, name="narcotrack",
                          identity_class="system",
                          description="Counter-narcotics information system; publisher of its STIX extension.")


@cache
def extension_definition() -> stix2.ExtensionDefinition:
    return stix2.ExtensionDefinition(
        id=EXTENSION_ID,
        created=PRODUCED,
        modified=PRODUCED,
        created_by_ref=PRODUCER_ID,
        name="narcotrack seizures, arrests, places and sharing terms",
        description=schema()["description"],
        schema=json.dumps(schema(), ensure_ascii=False, sort_keys=True),
        version=EXTENSION_VERSION,
        extension_types=["property-extension"],
    )
