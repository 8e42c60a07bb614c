"""Privacy-preserving person matching between two nodes: Bloom-filter (CLK) encodings compared by Dice.

Each node encodes the identity fields of its persons under a secret both nodes share: every field is cut
into tokens (bigrams of each word of the normalised name, year, month and day of birth, the sex code),
and each token sets ``k`` bits of one 1,024-bit array per person, at positions drawn from a keyed HMAC
of the token (the "cryptographic long-term key" of Schnell et al., as clkhash builds it). A node sends
the bit arrays, keyed block labels and a pseudonym per row; pairs whose Dice coefficient passes a
threshold are matched one to one, and only the matched pairs' pseudonyms are revealed.

Written on numpy and hmac rather than on clkhash/anonlink: clkhash 0.18.3 pins cryptography 40 and
mypy_extensions < 0.5 (this project's mypy needs >= 1.0), anonlink 0.15.3 dates from 2023, and the
scheme fits in this module. docs/exchange-pprl.md gives the parameters, the blocking and its recall
cost, the measured figures and the limits.
"""

from __future__ import annotations

import hmac
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, Literal, NamedTuple

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from narcotrack.access.policy import Principal, full_identity_filter, pseudonym, visible_filter
from narcotrack.store.schema import Person, PersonIdentity

Kind = Literal["text", "date", "digits", "exact"]
Record = Mapping[str, Any]
Bits = NDArray[np.uint64]
NAME_KEYS = ("given_name", "family_name", "name")  # what the phonetic blocking pass reads
YEAR_KEYS = ("date_of_birth", "birth_year")  # what the year-of-birth pass reads (the first present)
THRESHOLD = 0.85  # Dice for the default schema: the best F1 on 100,000 synthetic persons (docs/exchange-pprl.md)


@dataclass(frozen=True)
class FieldSpec:
    """One encoded field: the record keys it reads (joined), how it is tokenised, and its weight ``k``
    (bits set per token; a field with more tokens or more bits counts more in the Dice coefficient)."""

    name: str
    sources: tuple[str, ...]
    kind: Kind = "text"  # text: n-grams of each normalised word; date: year, month, day;
    #                     digits: positional digits (postcodes, ID numbers); exact: one token
    ngram: int = 2
    k: int = 20


@dataclass(frozen=True)
class Schema:
    """What both nodes must agree on, besides the secret: fields, filter length and blocking."""

    fields: tuple[FieldSpec, ...]
    bits: int = 1024  # a power of two, so that 16-bit hash values map to positions without bias
    blocking: tuple[str, ...] = ("year", "phonetic")
    version: str = "narcotrack-clk-1"  # enters every key: a changed schema gives unrelated encodings


DEFAULT_SCHEMA = Schema(fields=(
    FieldSpec("name", ("given_name", "family_name", "name"), "text", ngram=2, k=20),
    FieldSpec("date_of_birth", ("date_of_birth", "birth_year"), "date", ngram=1, k=40),  # the first present
    FieldSpec("sex", ("sex",), "exact", ngram=1, k=20),
))


# -- tokens ---------------------------------------------------------------------------------------------

def _missing(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def normalise(text: Any) -> str:
    """Lower case, accents stripped, anything but letters and digits turned into one space."""
    folded = unicodedata.normalize("NFKD", str(text).casefold())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return " ".join(re.sub(r"[\W_]+", " ", folded).split())


def _date_digits(value: Any) -> str:
    """YYYYMMDD for a date or a string holding one, YYYY for a year alone ('' when unreadable)."""
    if hasattr(value, "strftime"):
        return str(value.strftime("%Y%m%d"))
    if isinstance(value, float):
        value = int(value)
    digits = re.sub(r"\D", "", str(value))
    return digits if len(digits) in (4, 8) else ""


def tokens(spec: FieldSpec, record: Record) -> set[str]:
    """The tokens of one field of one record; missing values give none."""
    values: list[Any] = []
    for source in spec.sources:
        value = record.get(source)
        values.extend(value if isinstance(value, list | tuple) else [value])
    values = [v for v in values if not _missing(v)]
    if not values:
        return set()
    if spec.kind == "date":  # whole parts: two random dates share no token, a slip costs one of three
        digits = _date_digits(values[0])
        return {f"{part}{digits[i:j]}" for part, i, j in (("y", 0, 4), ("m", 4, 6), ("d", 6, 8)) if digits[i:j]}
    if spec.kind == "digits":
        return {f"{i}{c}" for i, c in enumerate(re.sub(r"\D", "", " ".join(map(str, values))))}
    text = normalise(" ".join(str(v) for v in values))
    if not text:
        return set()
    if spec.kind == "exact":
        return {text}
    n = spec.ngram
    out: set[str] = set()
    for word in text.split():  # per word, so that the order of given and family name does not matter
        padded = f" {word} " if n > 1 else word
        out.update(padded[i:i + n] for i in range(max(1, len(padded) - n + 1)))
    return out


# -- encoding -------------------------------------------------------------------------------------------

def _key(secret: bytes, schema: Schema, label: str) -> bytes:
    """A key per field (and per blocking pass), derived from the shared secret, so that the same bigram
    in two fields sets unrelated bits."""
    return hmac.digest(secret, f"{schema.version}\x1f{label}".encode(), "sha256")


def _positions(key: bytes, token: str, k: int, bits: int) -> list[int]:
    """``k`` positions from HMAC-SHA512 of the token, drawn independently ('random hashing'): the linear
    h1 + i*h2 of double hashing is what published attacks on Bloom-filter encodings exploit."""
    out: list[int] = []
    counter = 0
    while len(out) < k:
        digest = hmac.digest(key, f"{counter}\x1f{token}".encode(), "sha512")
        out.extend(int(v) % bits for v in np.frombuffer(digest, dtype="<u2"))
        counter += 1
    return out[:k]


def encode(records: Iterable[Record], secret: bytes, schema: Schema = DEFAULT_SCHEMA) -> Bits:
    """CLK encodings: one row of ``schema.bits / 64`` uint64 words per record, the same for the same
    secret and schema, unrelated for another secret."""
    if schema.bits % 64 or schema.bits & (schema.bits - 1) or schema.bits > 65536:
        raise ValueError("the filter length must be a power of two between 64 and 65,536 bits")
    keys = {f.name: _key(secret, schema, f"field\x1f{f.name}") for f in schema.fields}
    cache: dict[tuple[str, str], list[int]] = {}  # per call only: it is derived from the secret
    out: list[Bits] = []
    records = iter(records)
    while chunk := list(islice(records, 8192)):  # in chunks, to bound memory
        rows: list[int] = []
        cols: list[int] = []
        for i, record in enumerate(chunk):
            for spec in schema.fields:
                for tok in tokens(spec, record):
                    pos = cache.get((spec.name, tok))
                    if pos is None:
                        pos = cache[spec.name, tok] = _positions(keys[spec.name], tok, spec.k, schema.bits)
                    cols.extend(pos)
                    rows.extend([i] * len(pos))
        dense = np.zeros((len(chunk), schema.bits), dtype=np.uint8)
        dense[np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)] = 1
        out.append(_pack(dense))
    return np.concatenate(out) if out else np.zeros((0, schema.bits // 64), dtype=np.uint64)


def _pack(dense: NDArray[np.uint8]) -> Bits:
    packed = np.packbits(dense, axis=1, bitorder="little")
    return np.ascontiguousarray(packed).view("<u8").astype(np.uint64).reshape(len(dense), dense.shape[1] // 64)


def _unpack(bits: Bits) -> NDArray[np.float32]:
    raw = np.ascontiguousarray(bits.astype("<u8")).view(np.uint8)
    return np.unpackbits(raw, axis=1, bitorder="little").astype(np.float32)


# -- blocking -------------------------------------------------------------------------------------------

class Blocks(NamedTuple):
    """Keyed block labels: record ``rows[i]`` is in block ``labels[i]`` (a record may be in several)."""

    rows: NDArray[np.int64]
    labels: NDArray[np.uint64]


_SOUNDEX = str.maketrans("bfpvcgjkqsxzdtlmnr", "111122222222334556")


def soundex(word: str) -> str:
    """American Soundex of a normalised word (digits kept as they are)."""
    if not word:
        return ""
    codes = word.translate(_SOUNDEX)
    out, last = word[0], codes[0]
    for ch, code in zip(word[1:], codes[1:], strict=True):
        if code.isdigit() and code != last:
            out += code
        if ch not in "hw":
            last = code
    return (out + "000")[:4]


def _block_values(record: Record, passes: Sequence[str]) -> set[str]:
    out: set[str] = set()
    if "year" in passes:
        years = [_date_digits(record[k])[:4] for k in YEAR_KEYS if not _missing(record.get(k))]
        if years and years[0]:
            out.add("year\x1f" + years[0])
    if "phonetic" in passes:
        words = normalise(" ".join(str(record[k]) for k in NAME_KEYS if not _missing(record.get(k))))
        out.update("phonetic\x1f" + soundex(w) for w in words.split() if w[0].isalpha())
    return out


def block_labels(records: Iterable[Record], secret: bytes, schema: Schema = DEFAULT_SCHEMA) -> Blocks:
    """Block labels computed under the secret: HMAC of the year of birth and of the Soundex code of each
    name word, so a label shows which records share a value but not the value."""
    key = _key(secret, schema, "blocking")
    cache: dict[str, int] = {}
    rows: list[int] = []
    labels: list[int] = []
    for i, record in enumerate(records):
        for value in _block_values(record, schema.blocking):
            if value not in cache:
                cache[value] = int.from_bytes(hmac.digest(key, value.encode(), "sha256")[:8], "little")
            rows.append(i)
            labels.append(cache[value])
    return Blocks(np.asarray(rows, dtype=np.int64), np.asarray(labels, dtype=np.uint64))


def _pairs_by_block(a: Blocks, b: Blocks) -> Iterable[tuple[NDArray[np.int64], NDArray[np.int64]]]:
    """The rows of A and of B in each block label both sides hold."""
    order_a, order_b = np.argsort(a.labels, kind="stable"), np.argsort(b.labels, kind="stable")
    la, lb = a.labels[order_a], b.labels[order_b]
    ua, start_a = np.unique(la, return_index=True)
    ub, start_b = np.unique(lb, return_index=True)
    end_a, end_b = np.append(start_a[1:], len(la)), np.append(start_b[1:], len(lb))
    _, ia, ib = np.intersect1d(ua, ub, assume_unique=True, return_indices=True)
    for i, j in zip(ia, ib, strict=True):
        yield a.rows[order_a[start_a[i]:end_a[i]]], b.rows[order_b[start_b[j]:end_b[j]]]


# -- matching -------------------------------------------------------------------------------------------

def dice(a: Bits, b: Bits) -> NDArray[np.float64]:
    """Dice coefficients of every row of ``a`` with every row of ``b`` (for small sets and tests)."""
    inter = np.bitwise_count(a[:, None, :] & b[None, :, :]).sum(axis=2)
    total = popcount(a)[:, None] + popcount(b)[None, :]
    return np.where(total > 0, 2.0 * inter / np.maximum(total, 1), 0.0)


def popcount(bits: Bits) -> NDArray[np.int64]:
    return np.bitwise_count(bits).sum(axis=1, dtype=np.int64)


Scorer = Callable[[NDArray[np.int64], NDArray[np.int64]], NDArray[np.float32]]  # rows of A, of B -> scores


def _dice_rows(a: Bits, b: Bits, pa: NDArray[np.float32], pb: NDArray[np.float32],
               ra: NDArray[np.int64], rb: NDArray[np.int64]) -> NDArray[np.float32]:
    """Dice of rows ``ra`` of A against rows ``rb`` of B. Intersections are a float32 product of the
    unpacked bits: exact (counts stay far below 2^24) and 2-4x faster here than np.bitwise_count on the
    packed words, which ``popcount`` uses for the row totals."""
    inter = _unpack(a[ra]) @ _unpack(b[rb]).T
    total = pa[ra][:, None] + pb[rb][None, :]
    return np.asarray(2.0 * inter / np.maximum(total, 1.0), dtype=np.float32)


def _clk_scorer(a: Bits, b: Bits) -> Scorer:
    pa, pb = popcount(a).astype(np.float32), popcount(b).astype(np.float32)
    return lambda ra, rb: _dice_rows(a, b, pa, pb, ra, rb)


def _candidates(score: Scorer, n_a: int, n_b: int, threshold: float, blocks: tuple[Blocks, Blocks] | None,
                chunk: int = 2048) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]:
    """Pairs at or above the threshold: over the whole cross product in chunks, or within blocks."""
    if blocks is None:
        all_b = np.arange(n_b, dtype=np.int64)
        groups: Iterable[tuple[NDArray[np.int64], NDArray[np.int64]]] = (
            (np.arange(i, min(i + chunk, n_a), dtype=np.int64), all_b[j:j + 4 * chunk])
            for i in range(0, n_a, chunk) for j in range(0, n_b, 4 * chunk))
    else:
        groups = _pairs_by_block(*blocks)
    found_a, found_b, found_s = [], [], []
    for ra, rb in groups:
        for i in range(0, len(ra), chunk):  # a big block in slices, to bound memory
            sub = ra[i:i + chunk]
            s = score(sub, rb)
            x, y = np.nonzero(s >= threshold)
            found_a.append(sub[x])
            found_b.append(rb[y])
            found_s.append(s[x, y])
    if not found_a:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
    return np.concatenate(found_a), np.concatenate(found_b), np.concatenate(found_s)


def one_to_one(ia: NDArray[np.int64], ib: NDArray[np.int64], s: NDArray[np.float32]) -> list[tuple[int, int, float]]:
    """Greedy best-first assignment: the best remaining pair first, each record used once (ties broken by
    index, so the result does not depend on the order candidates were found in)."""
    order = np.lexsort((ib, ia, -s))
    used_a: set[int] = set()
    used_b: set[int] = set()
    out: list[tuple[int, int, float]] = []
    for k in order:
        x, y = int(ia[k]), int(ib[k])
        if x not in used_a and y not in used_b:
            used_a.add(x)
            used_b.add(y)
            out.append((x, y, round(float(s[k]), 6)))
    return out


def match(a: Bits, b: Bits, threshold: float = THRESHOLD,
          blocks: tuple[Blocks, Blocks] | None = None) -> list[tuple[int, int, float]]:
    """One-to-one matches (index in ``a``, index in ``b``, Dice) at or above ``threshold``; over the whole
    cross product, or only within shared block labels when ``blocks`` (A's, B's) are given."""
    if a.shape[1:] != b.shape[1:]:
        raise ValueError("the two sides were encoded with different filter lengths")
    return one_to_one(*_candidates(_clk_scorer(a, b), len(a), len(b), threshold, blocks))


# -- the plain-text baseline ----------------------------------------------------------------------------

def plain_match(a: Sequence[Record], b: Sequence[Record], threshold: float = THRESHOLD,
                schema: Schema = DEFAULT_SCHEMA, blocked: bool = True) -> list[tuple[int, int, float]]:
    """The baseline: the same comparison made in clear text by a node holding both sides. The Dice of the
    records' token sets, each token weighted by its field's ``k`` (what a CLK approximates, without hash
    collisions and without the secret); the same blocking and the same one-to-one assignment, so that the
    difference from ``match`` is the price of the encoding."""
    parts = []
    for spec in schema.fields:
        ta, tb = [tokens(spec, r) for r in a], [tokens(spec, r) for r in b]
        vocab = {t: i for i, t in enumerate(sorted(set().union(*ta, *tb)))}
        width = max(64, -(-len(vocab) // 64) * 64)
        fa, fb = _one_hot(ta, vocab, width), _one_hot(tb, vocab, width)
        parts.append((float(spec.k), fa, fb))
    size_a = np.sum([k * popcount(fa) for k, fa, _ in parts], axis=0, dtype=np.float32).reshape(len(a))
    size_b = np.sum([k * popcount(fb) for k, _, fb in parts], axis=0, dtype=np.float32).reshape(len(b))

    def score(ra: NDArray[np.int64], rb: NDArray[np.int64]) -> NDArray[np.float32]:
        inter = sum(k * (_unpack(fa[ra]) @ _unpack(fb[rb]).T) for k, fa, fb in parts)
        total = size_a[ra][:, None] + size_b[rb][None, :]
        return np.asarray(2.0 * inter / np.maximum(total, 1.0), dtype=np.float32)

    blocks = (block_labels(a, b"", schema), block_labels(b, b"", schema)) if blocked else None
    return one_to_one(*_candidates(score, len(a), len(b), threshold, blocks))


def _one_hot(sets: list[set[str]], vocab: dict[str, int], width: int) -> Bits:
    dense = np.zeros((len(sets), width), dtype=np.uint8)
    for i, s in enumerate(sets):
        dense[i, [vocab[t] for t in s]] = 1
    return _pack(dense)


# -- persons from the store -----------------------------------------------------------------------------

class PersonEncodings(NamedTuple):
    """What a node sends for matching: pseudonyms, CLK encodings and block labels, row for row."""

    pseudonyms: list[str]
    encodings: Bits
    blocks: Blocks


def person_record(identity: PersonIdentity, person: Person) -> dict[str, Any]:
    """The fields of the default schema for one stored person (sex X, 'unknown', counts as missing)."""
    return {"name": identity.name_latin or None, "date_of_birth": identity.date_of_birth,
            "birth_year": person.birth_year, "sex": None if person.sex in ("X", "", None) else person.sex}


def encode_persons(session: Session, principal: Principal, secret: bytes, *, pseudonym_key: bytes,
                   agreement: str, schema: Schema = DEFAULT_SCHEMA) -> PersonEncodings:
    """Encode the persons ``principal`` may see with their identity in full (no one seen only under a
    pseudonym, nor anyone without a Latin-script name), each keyed by its pseudonym for ``agreement``."""
    table = Person.__table__
    rows = session.execute(
        select(Person, PersonIdentity).join(PersonIdentity, PersonIdentity.person_id == Person.id)
        .where(visible_filter(principal, table), full_identity_filter(principal, table),
               PersonIdentity.name_latin != "")
        .order_by(Person.id)
    ).all()
    records = [person_record(ident, person) for person, ident in rows]
    return PersonEncodings([pseudonym(pseudonym_key, agreement, str(p.id)) for p, _ in rows],
                           encode(records, secret, schema), block_labels(records, secret, schema))
