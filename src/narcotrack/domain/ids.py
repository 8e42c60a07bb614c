"""Record identifiers: UUIDs that sort by creation time (version 7 layout, RFC 9562).

Time-ordered ids keep B-tree inserts local on both SQLite and PostgreSQL. Records whose identity comes
from outside (a gazetteer code, a row of an imported file) get name-based UUIDv5 ids instead, so that the
same thing always gets the same id and re-imports create no duplicates.
"""

from __future__ import annotations

import os
import random
import time
import uuid

NAMESPACE = uuid.UUID("6f1c3a52-8f57-4b7a-9d55-2b0a6c4e91d3")


def uuid7(ms: int | None = None, rand: random.Random | None = None) -> str:
    """A version-7 UUID string; pass ``ms`` and a seeded ``rand`` for deterministic ids (demo data)."""
    ts = int(time.time() * 1000) if ms is None else ms
    tail = rand.getrandbits(74) if rand is not None else int.from_bytes(os.urandom(10), "big") >> 6
    value = (
        (ts & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (tail >> 62) << 64 | 0b10 << 62 | (tail & ((1 << 62) - 1))
    )
    return str(uuid.UUID(int=value))


def stable_id(kind: str, key: str) -> str:
    """Name-based id: the same ``kind`` and ``key`` always give the same UUID."""
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{key}"))
