"""The file two nodes swap for privacy-preserving matching, and the comparison of two such files.

A node writes one JSON document: who made it and for which partner, the encoding schema it used, and per
person a pseudonym, the CLK (base64 of the little-endian bit array, as anonlink and clkhash write CLKs)
and the keyed block labels. Nothing in it is a name, a date or a value an outsider could hash and look
up. Either node, or a third party trusted with neither side's names, compares two files; the result is
pairs of pseudonyms and their Dice coefficient, nothing more.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from narcotrack.errors import InvalidInput
from narcotrack.exchange import pprl
from narcotrack.exchange.pprl import Blocks, PersonEncodings, Schema

FORMAT = "narcotrack-clk"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class EncodingFile:
    """One side's encodings with what both sides must agree on to compare them."""

    node: str  # the organisation code of the node that encoded
    partner: str  # the organisation code the pseudonyms were made for
    schema: str
    bits: int
    created: str
    encodings: PersonEncodings


def schema_fingerprint(schema: Schema) -> str:
    """A readable digest of the schema: fields, tokenisation and weights, filter length and blocking."""
    fields = ",".join(f"{f.name}:{f.kind}:{f.ngram}:{f.k}" for f in schema.fields)
    return f"{schema.version};bits={schema.bits};blocking={'+'.join(schema.blocking)};{fields}"


def write(fh: IO[str], enc: PersonEncodings, *, node: str, partner: str,
          schema: Schema = pprl.DEFAULT_SCHEMA) -> int:
    """Write ``enc`` as one JSON document; returns the number of persons written."""
    labels: list[list[str]] = [[] for _ in enc.pseudonyms]
    for row, label in zip(enc.blocks.rows.tolist(), enc.blocks.labels.tolist(), strict=True):
        labels[row].append(f"{label:016x}")
    raw = np.ascontiguousarray(enc.encodings.astype("<u8"))
    head = {"format": FORMAT, "version": FORMAT_VERSION, "node": node, "partner": partner,
            "schema": schema_fingerprint(schema), "bits": schema.bits,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "count": len(enc.pseudonyms)}
    fh.write(json.dumps(head)[:-1] + ', "persons": [')
    for i, name in enumerate(enc.pseudonyms):
        item = {"pseudonym": name, "clk": base64.b64encode(raw[i].tobytes()).decode(), "blocks": sorted(labels[i])}
        fh.write(("," if i else "") + "\n" + json.dumps(item))
    fh.write("\n]}\n")
    return len(enc.pseudonyms)


def read(path: Path) -> EncodingFile:
    """Read and check one side's file: a wrong format, schema or filter length is an InvalidInput naming
    the file and the person where it is wrong."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{path.name}: not a readable encoding file ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != FORMAT_VERSION:
        raise InvalidInput(f"{path.name}: not a {FORMAT} file of version {FORMAT_VERSION}")
    bits = doc.get("bits")
    if not isinstance(bits, int) or bits <= 0 or bits % 64:
        raise InvalidInput(f"{path.name}: 'bits' must be a positive multiple of 64")
    persons = doc.get("persons")
    if not isinstance(persons, list):
        raise InvalidInput(f"{path.name}: 'persons' must be a list")
    names: list[str] = []
    words = np.zeros((len(persons), bits // 64), dtype=np.uint64)
    rows: list[int] = []
    labels: list[int] = []
    for i, item in enumerate(persons):
        where = f"{path.name}: person {i + 1}"
        try:
            raw = base64.b64decode(item["clk"], validate=True)
            names.append(str(item["pseudonym"]))
            block = [int(x, 16) for x in item.get("blocks", [])]
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"{where}: needs a pseudonym, a base64 'clk' and hex 'blocks' ({exc})") from exc
        if len(raw) * 8 != bits:
            raise InvalidInput(f"{where}: the CLK has {len(raw) * 8} bits, the file says {bits}")
        words[i] = np.frombuffer(raw, dtype="<u8")
        rows.extend([i] * len(block))
        labels.extend(block)
    blocks = Blocks(np.asarray(rows, dtype=np.int64), np.asarray(labels, dtype=np.uint64))
    return EncodingFile(str(doc.get("node", "")), str(doc.get("partner", "")), str(doc.get("schema", "")), bits,
                        str(doc.get("created", "")), PersonEncodings(names, words, blocks))


def compare(ours: EncodingFile, theirs: EncodingFile, threshold: float = pprl.THRESHOLD,
            blocked: bool = True) -> list[tuple[str, str, float]]:
    """Matched pairs (our pseudonym, their pseudonym, Dice), one to one, best first."""
    if ours.schema != theirs.schema or ours.bits != theirs.bits:
        raise InvalidInput("the two files were encoded with different schemas: "
                           f"{ours.schema!r} against {theirs.schema!r}; both nodes must use the same one")
    if not 0 < threshold <= 1:
        raise InvalidInput("the threshold is a Dice coefficient between 0 (excluded) and 1")
    a, b = ours.encodings, theirs.encodings
    found = pprl.match(a.encodings, b.encodings, threshold, blocks=(a.blocks, b.blocks) if blocked else None)
    return [(a.pseudonyms[i], b.pseudonyms[j], s) for i, j, s in found]


def write_pairs(fh: IO[str], pairs: Iterable[tuple[Any, ...]], header: tuple[str, ...]) -> int:
    import csv

    w = csv.writer(fh, lineterminator="\n")
    w.writerow(header)
    n = 0
    for row in pairs:
        w.writerow(row)
        n += 1
    return n
