"""Interface language: every user-facing string goes through gettext (English and Khmer).

Catalogues are kept as .po files in ``narcotrack/locale`` and compiled in memory on first use, so no
build step is needed and no binary file is committed.
"""

from __future__ import annotations

import gettext
import io
from functools import cache
from importlib import resources

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LANGUAGES = {"en": "English", "km": "ខ្មែរ"}
DEFAULT = "en"


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """Translations for ``lang``; English (the source language) and unknown languages fall back to source."""
    if lang == DEFAULT or lang not in LANGUAGES:
        return gettext.NullTranslations()
    po_path = resources.files("narcotrack") / "locale" / lang / "LC_MESSAGES" / "messages.po"
    with po_path.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf)


def pick_language(query: str | None, cookie: str | None, accept: str | None) -> str:
    """The ?lang= parameter wins, then the cookie, then the browser's Accept-Language."""
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            return str(candidate)
    for part in (accept or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return DEFAULT
