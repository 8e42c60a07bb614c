"""Deterministic STIX identifiers.

STIX 2.1 asks for UUIDv4 in the ids of domain objects, yet the same record must always map to the same
id (re-exports update, they do not duplicate). So the UUID is derived from the record's name with
SHA-256 and then given the version-4 layout: random-looking to a validator, stable for narcotrack.
"""

from __future__ import annotations

import hashlib
import uuid

_SALT = "narcotrack-stix-2.1"


def stix_uuid(*parts: str) -> str:
    digest = hashlib.sha256("\x1f".join((_SALT, *parts)).encode("utf-8")).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def stix_id(stix_type: str, *parts: str) -> str:
    """``{stix_type}--{uuid}`` for the record named by ``parts`` (e.g. 'incident', record id)."""
    return f"{stix_type}--{stix_uuid(stix_type, *parts)}"
