"""Controlled vocabularies, loaded once from the YAML files beside this module.

Vocabularies are data, not code: a new drug alias, unit or transport mode is a line in a YAML file.
Matching is case-, space- and punctuation-insensitive so that "Ya Ba", "yaba" and "YABA" are one term.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml

_IGNORED = {ord(c): None for c in "\u200b\u200c\u200d\u2060\ufeff-_'\u2019.,()\"/"}


# Khmer writes subscript ta and subscript da alike (្ត / ្ដ) and people type either; the gazetteer has
# ឧត្ដរមានជ័យ where officers often type ឧត្តរមានជ័យ. Matching treats them as one letter.
_KHMER_FOLDS = (("\u17d2\u178a", "\u17d2\u178f"),)


def norm(text: object) -> str:
    """Normalised form used for matching names: NFC, casefolded, without spaces and punctuation."""
    s = unicodedata.normalize("NFC", str(text))
    for variant, canonical in _KHMER_FOLDS:
        s = s.replace(variant, canonical)
    return "".join(s.split()).translate(_IGNORED).casefold()


def load_yaml(name: str) -> Any:
    """Read one vocabulary file shipped with the package."""
    path = resources.files("narcotrack.domain") / "vocab" / name
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Term:
    code: str
    name_en: str
    name_km: str = ""
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass
class Vocabulary:
    """One list of terms with a lookup from any alias, name or code to the term's code."""

    name: str
    terms: dict[str, Term]
    _index: dict[str, str]
    _patterns: list[tuple[re.Pattern[str], str]] = field(default_factory=list)

    @classmethod
    def from_entries(cls, name: str, entries: list[dict[str, Any]]) -> Vocabulary:
        terms: dict[str, Term] = {}
        index: dict[str, str] = {}
        patterns: list[tuple[re.Pattern[str], str]] = []
        for entry in entries:
            code = str(entry["code"])
            extra = {k: v for k, v in entry.items() if k not in {"code", "name_en", "name_km"}}
            terms[code] = Term(code, str(entry.get("name_en", code)), str(entry.get("name_km", "")), extra)
            keys = [code, entry.get("name_en", ""), entry.get("name_km", ""), *entry.get("aliases", [])]
            for key in keys:
                if key:
                    # First claim wins, so an alias can never silently move a term.
                    index.setdefault(norm(key), code)
            patterns.extend((re.compile(p, re.IGNORECASE), code) for p in entry.get("patterns", []))
        return cls(name, terms, index, patterns)

    def resolve(self, text: object) -> str | None:
        """Code of the term that ``text`` names, or None when it names none."""
        if text is None:
            return None
        key = norm(text)
        if not key:
            return None
        code = self._index.get(key)
        if code is not None:
            return code
        raw = str(text).strip()
        for pattern, pcode in self._patterns:
            if pattern.search(raw):
                return pcode
        return None

    def __contains__(self, code: object) -> bool:
        return code in self.terms

    def codes(self) -> list[str]:
        return list(self.terms)


@dataclass(frozen=True)
class Vocabularies:
    drugs: Vocabulary
    units: Vocabulary
    transport: Vocabulary
    concealment: Vocabulary
    place_kinds: Vocabulary
    roles: Vocabulary
    outcomes: Vocabulary
    charges: Vocabulary
    markings: Vocabulary
    distributions: Vocabulary
    org_kinds: Vocabulary
    user_roles: Vocabulary
    operation_kinds: Vocabulary
    sexes: Vocabulary
    age_bands: Vocabulary
    indicator_measures: Vocabulary
    reliability: Vocabulary
    credibility: Vocabulary
    record_sources: Vocabulary
    campaign_audiences: Vocabulary
    training_topics: Vocabulary


@cache
def vocabularies() -> Vocabularies:
    """All vocabularies, parsed once per process."""
    common = load_yaml("common.yaml")
    arrest = load_yaml("arrest.yaml")
    sharing = load_yaml("sharing.yaml")
    v = Vocabulary.from_entries
    return Vocabularies(
        drugs=v("drugs", load_yaml("drugs.yaml")["drugs"]),
        units=v("units", load_yaml("units.yaml")["units"]),
        transport=v("transport", load_yaml("transport.yaml")["terms"]),
        concealment=v("concealment", load_yaml("concealment.yaml")["terms"]),
        place_kinds=v("place_kinds", load_yaml("place_kinds.yaml")["terms"]),
        roles=v("roles", arrest["roles"]),
        outcomes=v("outcomes", arrest["outcomes"]),
        charges=v("charges", load_yaml("charges.yaml")["charges"]),
        markings=v("markings", sharing["markings"]),
        distributions=v("distributions", sharing["distributions"]),
        org_kinds=v("org_kinds", common["org_kinds"]),
        user_roles=v("user_roles", common["user_roles"]),
        operation_kinds=v("operation_kinds", common["operation_kinds"]),
        sexes=v("sexes", common["sexes"]),
        age_bands=v("age_bands", common["age_bands"]),
        indicator_measures=v("indicator_measures", common["indicator_measures"]),
        reliability=v("reliability", common["admiralty_reliability"]),
        credibility=v("credibility", common["admiralty_credibility"]),
        record_sources=v("record_sources", common["record_sources"]),
        campaign_audiences=v("campaign_audiences", common["campaign_audiences"]),
        training_topics=v("training_topics", common["training_topics"]),
    )
