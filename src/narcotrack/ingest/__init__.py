"""Getting data in: spreadsheet and UNODC IDS import (``importer.import_file``), the import template
(``template.write_template``) and the demo-data generator (``demo``).

Submodules are imported on first use, so that importing one part (say the demo generator) does not load
the others.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ImportReport", "import_file", "write_template"]


def __getattr__(name: str) -> Any:
    if name == "import_file":
        from narcotrack.ingest.importer import import_file

        return import_file
    if name == "ImportReport":
        from narcotrack.ingest.report import ImportReport

        return ImportReport
    if name == "write_template":
        from narcotrack.ingest.template import write_template

        return write_template
    raise AttributeError(name)
