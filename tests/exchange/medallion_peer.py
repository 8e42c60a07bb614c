"""The OASIS medallion TAXII 2.1 server (memory backend) on a loopback port: the third-party peer of the
exchange tests and benchmarks."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

COLLECTION_ID = "8e2f4f1c-0c8f-4c9b-9a4d-1d6f3d2a7b11"
STIX_MEDIA = "application/stix+json;version=2.1"


@contextmanager
def medallion(work: Path, objects: list[dict[str, Any]] | None = None, *, writable: bool = False,
              user: str = "peer", password: str = "secret", page_size: int = 1000) -> Iterator[str]:
    """medallion with one collection holding ``objects`` (each once, added a microsecond apart in the
    order given); yields its API root. The server answers ``user``/``password`` by HTTP Basic."""
    from medallion import application_instance, register_blueprints, set_config
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    unique = list({o["id"]: o for o in objects or []}.values())
    added = [f"2026-01-01T00:{i // 60 // 10**6:02d}:{i // 10**6 % 60:02d}.{i % 10**6:06d}Z" for i in range(len(unique))]
    data = {"/discovery": {"title": "medallion", "default": "http://127.0.0.1/api/", "api_roots": []},
            "api": {"information": {"title": "peer", "versions": ["application/taxii+json;version=2.1"],
                                    "max_content_length": 10**9},
                    "status": [],
                    "collections": [{"id": COLLECTION_ID, "title": "shared", "can_read": True, "can_write": writable,
                                     "media_types": [STIX_MEDIA],
                                     "objects": [{**o, "_date_added": a} for o, a in zip(unique, added, strict=True)],
                                     "manifest": [{"id": o["id"], "date_added": a, "media_type": STIX_MEDIA,
                                                   "version": o.get("modified", o.get("created", a))}
                                                  for o, a in zip(unique, added, strict=True)]}]}}
    path = work / "medallion.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    config = {"users": {user: password}, "taxii": {"max_page_size": page_size},
              "backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend",
                          "filename": str(path)}}
    for prop in ("users", "taxii", "backend"):
        set_config(application_instance, prop, config)
    if "discovery" not in application_instance.blueprints:
        register_blueprints(application_instance)
    server = make_server("127.0.0.1", 0, application_instance, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api/"
    finally:
        server.shutdown()
        path.unlink(missing_ok=True)
