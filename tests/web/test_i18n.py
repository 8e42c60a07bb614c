"""Every interface string is in the catalogue and translated into Khmer."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
LOCALE = ROOT / "src" / "narcotrack" / "locale"


def _extracted() -> set[str]:
    method_map = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
    options = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    ids = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT / "src" / "narcotrack"), method_map, options_map=options
    ):
        ids.add(message if isinstance(message, str) else message[0])
    return ids


def test_catalogue_template_is_up_to_date() -> None:
    with (LOCALE / "messages.pot").open("rb") as fh:
        pot = {m.id for m in read_po(fh) if m.id}
    missing = _extracted() - pot
    assert not missing, f"run pybabel extract (see docs/web.md); missing: {sorted(missing)[:5]}"


def test_every_string_has_a_khmer_translation() -> None:
    with (LOCALE / "km" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalog = read_po(fh, locale="km")
    untranslated = [m.id for m in catalog if m.id and (not m.string or m.fuzzy)]
    assert untranslated == []
    assert _extracted() <= {m.id for m in catalog if m.id}
