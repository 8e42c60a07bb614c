"""Parsing of single cell values (dates, numbers, coded terms, places), cached on the raw value.

A file of a million rows repeats the same few hundred spellings of provinces, drugs and units, so each
lookup is cached on the raw cell value: validation then costs a dictionary hit per cell, not a
vocabulary search. Bad values raise ``BadValue`` with a reason written for the person fixing the file.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from narcotrack.domain.places import (
    is_unknown_country,
    resolve_commune,
    resolve_country,
    resolve_district,
    resolve_province,
)
from narcotrack.domain.vocab import norm, vocabularies

CACHE = 1 << 14
KHMER_DIGITS = str.maketrans("០១២៣៤៥៦៧៨៩", "0123456789")
EXCEL_EPOCH = dt.date(1899, 12, 30)
EARLIEST = dt.date(1950, 1, 1)
_ISO = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?"
)
_YMD_SLASH = re.compile(r"(\d{4})[/.](\d{1,2})[/.](\d{1,2})")
_DMY = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?: \d{1,2}:\d{2}(?::\d{2})?)?")
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d*)?")


class BadValue(ValueError):
    """A cell whose value cannot be used; ``reason`` says why, for the row report."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def text(value: Any) -> str:
    """A cell as trimmed text; whole numbers from spreadsheets lose their '.0'."""
    if value is None:
        return ""
    if type(value) is str:
        return value.strip()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


@lru_cache(maxsize=CACHE)
def parse_date(value: Any) -> str | None:
    """ISO date (``YYYY-MM-DD``) of a cell: ISO text, dd/mm/yyyy, a real Excel date or an Excel serial."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        day = value.date()
    elif isinstance(value, dt.date):
        day = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if not 1 <= value < 2958466:
            raise BadValue("not a date")
        day = EXCEL_EPOCH + dt.timedelta(days=int(value))
    else:
        s = str(value).strip().translate(KHMER_DIGITS)
        if not s:
            return None
        day = _date_from_text(s)
    if day < EARLIEST:
        raise BadValue(f"date before {EARLIEST.year}: probably a typing error")
    return day.isoformat()


def _date_from_text(s: str) -> dt.date:
    m = _ISO.fullmatch(s) or _YMD_SLASH.fullmatch(s)
    if m:
        y, mo, d = int(m[1]), int(m[2]), int(m[3])
    else:
        m = _DMY.fullmatch(s)
        if not m:
            if re.fullmatch(r"\d{4,5}(\.0)?", s):
                return parse_date_serial(float(s))
            raise BadValue("not a date: write it as YYYY-MM-DD or DD/MM/YYYY")
        d, mo, y = int(m[1]), int(m[2]), int(m[3])
    try:
        return dt.date(y, mo, d)
    except ValueError as exc:
        raise BadValue(f"not a valid date ({exc}); dates are read as YYYY-MM-DD or DD/MM/YYYY") from exc


def parse_date_serial(value: float) -> dt.date:
    return EXCEL_EPOCH + dt.timedelta(days=int(value))


def today_iso() -> str:
    return dt.date.today().isoformat()


def parse_number(value: Any) -> float:
    """A finite float from a cell: numbers, '1,234.5', Khmer digits. Raises BadValue (sign not checked)."""
    if type(value) is str:
        try:  # the common case: a plain number ('1234.5', and Khmer digits, which float() reads too)
            number = float(value)
        except ValueError:
            number = _slow_number(value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        number = _slow_number(value)
    if number != number or number in (_INF, -_INF):
        raise BadValue("not a number")
    return number


_INF = float("inf")


def _slow_number(value: Any) -> float:
    """Numbers with thousands separators, spaces or blanks; raises BadValue."""
    s = text(value).translate(KHMER_DIGITS).replace("\u00a0", "").replace(" ", "")
    if not s:
        raise BadValue("missing")
    if "," in s:
        if not _THOUSANDS.fullmatch(s):
            raise BadValue("not a number: use a point for decimals (1234.5), not a comma")
        s = s.replace(",", "")
    try:
        return float(s)
    except ValueError as exc:
        raise BadValue("not a number") from exc


def coder(vocab_name: str) -> Callable[[Any], str | None]:
    """A cached ``raw value -> code | None`` function for one vocabulary."""
    vocab = getattr(vocabularies(), vocab_name)

    @lru_cache(maxsize=CACHE)
    def code(value: Any) -> str | None:
        return vocab.resolve(text(value))

    return code


@lru_cache(maxsize=CACHE)
def country(value: Any) -> str | None:
    """ISO code of a country cell; None for blank or 'Unknown'; BadValue when not recognised."""
    s = text(value)
    if not s or is_unknown_country(s):
        return None
    code = resolve_country(s)
    if code is None:
        raise BadValue("country not recognised (give its English name or ISO code, e.g. TH)")
    return code


@lru_cache(maxsize=CACHE)
def countries(value: Any) -> str:
    """Space-separated ISO codes of a list of countries ('Laos, Thailand', 'LA TH', 'ឡាវ; ថៃ')."""
    out: list[str] = []
    for part in re.split(r"[,;/|\n]+", text(value)):
        part = part.strip()
        if not part or is_unknown_country(part):
            continue
        code = resolve_country(part)
        if code is not None:
            out.append(code)
            continue
        words = part.split()
        codes = [resolve_country(w) for w in words]
        if len(words) > 1 and all(codes):
            out.extend(c for c in codes if c)
            continue
        raise BadValue(f"country {part!r} not recognised")
    return " ".join(dict.fromkeys(out))


class PlaceError(BadValue):
    """A place that does not resolve; ``level`` names the column at fault."""

    def __init__(self, level: str, reason: str) -> None:
        super().__init__(reason)
        self.level = level


@lru_cache(maxsize=CACHE)
def cambodian_place(province: str, district: str, commune: str) -> tuple[str, str, str | None]:
    """(most specific place code, province code, district code) for a Cambodian place; PlaceError."""
    if not province:
        if district or commune:
            raise PlaceError("province", "missing: a district or commune needs its province")
        raise PlaceError("province", "missing")
    prov = _first(resolve_province, province)
    if prov is None:
        raise PlaceError("province", "province not recognised (Khmer or English name, or code 1-25)")
    if not district:
        if commune:
            raise PlaceError("district", "missing: a commune needs its district")
        return prov, prov, None
    dist = _first(lambda s: resolve_district(s, prov), district)
    if dist is None:
        raise PlaceError("district", f"no such district in province {prov}")
    if not commune:
        return dist, prov, dist
    comm = _first(lambda s: resolve_commune(s, dist), commune)
    if comm is None:
        raise PlaceError("commune", f"no such commune in district {dist}")
    return comm, prov, dist


# Khmer subscript TA and subscript DA look the same and are typed both ways (ឧត្តរ / ឧត្ដរ); the
# gazetteer uses one, officers the other. Try the name as written, then with the other subscript.
_SUB_TA, _SUB_DA = "\u17d2\u178f", "\u17d2\u178a"


def _first(resolve: Callable[[str], str | None], name: str) -> str | None:
    found = resolve(name)
    if found is None and (_SUB_TA in name or _SUB_DA in name):
        for variant in (name.replace(_SUB_TA, _SUB_DA), name.replace(_SUB_DA, _SUB_TA)):
            if variant != name and (found := resolve(variant)) is not None:
                break
    return found


def province_code(text_value: str) -> str | None:
    """Cached province lookup in any script or spelling (for formats whose province is optional)."""
    return _province_cached(text_value)


@lru_cache(maxsize=CACHE)
def _province_cached(text_value: str) -> str | None:
    return _first(resolve_province, text_value) if text_value else None


def place_key(place_text: str, admin_text: str = "") -> str:
    """Comparable form of free-text place names ('GRAND PORT' and 'Grand Port' are one place)."""
    return f"{norm(place_text)}/{norm(admin_text)}" if admin_text else norm(place_text)
