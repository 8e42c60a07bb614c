"""Talking to a partner's TAXII 2.1 server with the OASIS ``taxii2-client``.

narcotrack nodes authenticate TAXII clients with API tokens sent as ``Authorization: Bearer``; the
client library only knows Basic and its own ``Token`` scheme, hence ``BearerAuth``.
"""

from __future__ import annotations

from typing import Any

import requests


class BearerAuth(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, r: Any) -> Any:
        r.headers["Authorization"] = f"Bearer {self.token}"
        return r
