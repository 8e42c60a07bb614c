"""Federation: pull from and push to partners' TAXII 2.1 servers (other narcotrack nodes, MISP, medallion).

Nations federate: each node owns its data and fetches what partners share with it. Partners are the rows
of the directory in ``narcotrack.exchange.partners``.

A pull walks each readable collection page by page from the stored cursor, stores every page through
``import_objects`` (upsert by STIX id, so a page fetched twice changes nothing) and commits the cursor after
each page, so a dropped connection resumes where it stopped, without loss and without duplicates. A pull
is partial: a bad object is reported (and audited), never silently dropped, and never blocks the objects
after it. An object that refers to a record arriving on a later page is retried with the later pages, and
the cursor is held before it until it is stored.

A push sends, to the partner's writable collection, the records this node's own organisations own that
the partner's organisation may see under the sharing policy (as a liaison of it would), changed since the
last push.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session
from taxii2client.common import _HTTPConnection  # the client's one way to share our session
from taxii2client.exceptions import TAXIIServiceException
from taxii2client.v21 import ApiRoot, Collection

from narcotrack.access.audit import record_event
from narcotrack.access.policy import principal_for
from narcotrack.errors import (
    Forbidden,
    InvalidInput,
    NarcotrackError,
    NotAuthenticated,
    NotFound,
)
from narcotrack.exchange.ids import stix_uuid
from narcotrack.exchange.partners import Partner, auth_for
from narcotrack.exchange.stix_export import StixExporter, as_dict
from narcotrack.exchange.stix_import import import_objects
from narcotrack.exchange.stix_read import kind_of
from narcotrack.exchange.taxii_feed import parse_time, taxii_time
from narcotrack.store.schema import Organisation, PartnerCursor, User, utcnow

TAXII_MEDIA = "application/taxii+json;version=2.1"
PAGE = 500  # objects asked for per page
CHUNK = 500  # objects sent per push request
TIMEOUT = 60.0  # seconds per HTTP request
NARCOTRACK_ALL = stix_uuid("taxii-collection", "all")  # a narcotrack peer's superset collection
REFERENCES = {"arrests.person_ref", "operation_ref"}  # problems a later page can resolve
RECORDS = ("individual", "grouping", "incident")
T = TypeVar("T")


class PartnerUnreachable(NarcotrackError):
    """A partner's server did not answer (after retries) or answered with a server error."""

    exit_code = 10
    http_status = 502


# -- talking to the partner -----------------------------------------------------------------------------------
class _Timeout(HTTPAdapter):
    """taxii2-client sets no timeout: a hung partner must not hang the pull."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, *args, **kwargs)


def _said(exc: requests.HTTPError) -> str:
    """What the partner said, from its TAXII error message where it sent one."""
    resp = exc.response
    if resp is None:
        return str(exc)
    try:
        body = resp.json()
        text = body.get("description") or body.get("title") or ""
    except ValueError:
        text = resp.text[:200]
    return f"HTTP {resp.status_code}" + (f": {text}" if text else "")


class Client:
    """One conversation with one partner: taxii2-client over our session, with timeouts and retries."""

    def __init__(self, partner: Partner, *, session: requests.Session | None = None, retries: int = 3,
                 backoff: float = 1.0, timeout: float = TIMEOUT) -> None:
        self.partner, self.retries, self.backoff = partner, retries, backoff
        self.session = session or requests.Session()
        self.session.auth = auth_for(partner.token)
        for prefix in ("http://", "https://"):
            self.session.mount(prefix, _Timeout(timeout))
        conn = _HTTPConnection(version="2.1")
        conn.session = self.session
        self.root = ApiRoot(partner.api_root, conn=conn)

    def call(self, what: str, work: Callable[[], T]) -> T:
        """Run ``work``; retry dropped connections, timeouts and server errors with backoff, then fail
        with a message a user can act on."""
        where = f"partner {self.partner.name} ({self.partner.api_root})"
        reason = ""
        for attempt in range(self.retries + 1):
            try:
                return work()
            except (requests.ConnectionError, requests.Timeout) as exc:
                reason = f"{type(exc).__name__}: {str(exc)[:200]}"
            except requests.HTTPError as exc:
                status = exc.response.status_code if exc.response is not None else 0
                if status in (401, 407):
                    raise NotAuthenticated(f"{where} refused this node's credential while trying to {what} "
                                           f"({_said(exc)}); add the partner again with a valid token") from None
                if status == 403:
                    raise Forbidden(f"{where} does not let this node {what} ({_said(exc)})") from None
                if status == 404:
                    raise NotFound(f"{where} has no such resource while trying to {what} ({_said(exc)}); "
                                   "is the API root address right?") from None
                if status != 429 and status < 500:
                    raise InvalidInput(f"{where} refused the request to {what} ({_said(exc)})") from None
                reason = _said(exc)
            except (TAXIIServiceException, ValueError) as exc:
                raise InvalidInput(f"{where} did not answer as a TAXII 2.1 server while trying to {what}: "
                                   f"{str(exc).splitlines()[0][:200]}") from None
            if attempt < self.retries:
                time.sleep(self.backoff * 2 ** attempt)
        raise PartnerUnreachable(f"{where} could not be reached to {what} after {self.retries + 1} tries "
                                 f"({reason}). Everything stored before is kept; run the command again to "
                                 "resume.")

    def collections(self) -> list[Collection]:
        return self.call("list its collections", lambda: list(self.root.collections))

    def page(self, coll: Collection, params: dict[str, Any]) -> tuple[dict[str, Any], Mapping[str, str]]:
        """One page of objects and its headers (taxii2-client drops the X-TAXII-Date-Added ones)."""
        def get() -> tuple[dict[str, Any], Mapping[str, str]]:
            resp = self.session.get(coll.objects_url, params=params, headers={"Accept": TAXII_MEDIA})
            resp.raise_for_status()
            if not resp.headers.get("content-type", "").startswith("application/taxii+json"):
                raise TAXIIServiceException(f"got {resp.headers.get('content-type')!r}, not {TAXII_MEDIA}")
            body = resp.json()
            if not isinstance(body, dict):
                raise ValueError("the page is not a TAXII envelope")
            return body, resp.headers  # case-insensitive
        return self.call(f"read collection {coll.title!r}", get)


# -- pulling ----------------------------------------------------------------------------------------------------
@dataclass
class PulledProblem:
    page: int
    stix_id: str
    property: str
    reason: str


@dataclass
class CollectionPull:
    """What one collection gave in one pull."""

    collection_id: str
    title: str
    resumed_from: str | None = None
    cursor: str | None = None
    pages: int = 0
    objects: int = 0
    created: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    unchanged: Counter[str] = field(default_factory=Counter)
    owned_here: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)  # objects of types narcotrack does not store
    problems: list[PulledProblem] = field(default_factory=list)

    def counts(self) -> dict[str, Any]:
        return {"pages": self.pages, "objects": self.objects, "created": dict(self.created),
                "updated": dict(self.updated), "unchanged": sum(self.unchanged.values()),
                "owned_here": sum(self.owned_here.values()), "skipped": dict(self.skipped),
                "problems": len(self.problems)}


@dataclass
class PullReport:
    partner: str
    collections: list[CollectionPull] = field(default_factory=list)

    def total(self, what: str) -> int:
        return sum(sum(getattr(c, what).values()) for c in self.collections)

    def to_text(self, max_problems: int = 20) -> str:
        lines = [f"Pull from partner {self.partner}"]
        for c in self.collections:
            since = f"after {c.resumed_from}" if c.resumed_from else "from the start"
            lines.append(f"  {c.title} ({since}): {c.objects:,} objects in {c.pages} pages")
            for label, counts in (("created", c.created), ("updated", c.updated), ("unchanged", c.unchanged),
                                  ("owned here", c.owned_here), ("not stored", c.skipped)):
                if counts:
                    lines.append(f"    {label:<11} " + ", ".join(f"{n:,} {k}" for k, n in sorted(counts.items())))
            if c.problems:
                lines.append(f"    {len(c.problems):,} objects not stored; the first {min(len(c.problems), max_problems)}:")
                lines += [f"      page {p.page}, {p.stix_id}, {p.property}: {p.reason}"
                          for p in c.problems[:max_problems]]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


def _before(stamp: str) -> str:
    """One microsecond before a TAXII timestamp: ``added_after`` is exclusive and records changed in the
    same microsecond may straddle a page boundary, so a resumed pull asks for them again (they are then
    unchanged)."""
    return taxii_time(parse_time(stamp, "the stored cursor") - dt.timedelta(microseconds=1))


def _cursor(engine: Engine, partner_id: str, collection_id: str) -> PartnerCursor | None:
    with Session(engine, expire_on_commit=False) as s:
        return s.get(PartnerCursor, (partner_id, collection_id))


def _save_cursor(engine: Engine, partner_id: str, collection_id: str, **values: Any) -> None:
    with Session(engine) as s, s.begin():
        row = s.get(PartnerCursor, (partner_id, collection_id))
        if row is None:
            row = PartnerCursor(partner_id=partner_id, collection_id=collection_id, objects=0)
            s.add(row)
        added = values.pop("add_objects", 0)
        for k, v in values.items():
            setattr(row, k, v)
        row.objects = (row.objects or 0) + added
        row.updated_at = utcnow()


def _chosen(readable: list[Collection], wanted: Sequence[str] | None) -> list[Collection]:
    if wanted:
        out = []
        for w in wanted:
            match = [c for c in readable if w in (c.id, c.title)]
            if not match:
                names = "; ".join(f"{c.title} ({c.id})" for c in readable) or "none"
                raise NotFound(f"the partner has no readable collection {w!r}; readable: {names}")
            out += [c for c in match if c not in out]
        return out
    # A narcotrack peer's other collections are slices of "everything shared with you".
    everything = [c for c in readable if c.id == NARCOTRACK_ALL]
    return everything or readable


def pull(engine: Engine, partner: Partner, *, user_id: str | None = None, limit: int = PAGE,
         collections: Sequence[str] | None = None, session: requests.Session | None = None,
         retries: int = 3, backoff: float = 1.0) -> PullReport:
    """Fetch what the partner shares with this node, from where the last pull stopped."""
    if not partner.active:
        raise InvalidInput(f"partner {partner.name!r} was removed; add it again to use it")
    client = Client(partner, session=session, retries=retries, backoff=backoff)
    readable = [c for c in client.collections() if c.can_read]
    report = PullReport(partner.name)
    for coll in _chosen(readable, collections):
        report.collections.append(_pull_collection(engine, client, partner, coll, limit, user_id))
    return report


def _pull_collection(engine: Engine, client: Client, partner: Partner, coll: Collection, limit: int,
                     user_id: str | None) -> CollectionPull:
    stored = _cursor(engine, partner.id, coll.id)
    result = CollectionPull(coll.id, coll.title, resumed_from=stored.added_after if stored else None)
    cursor = result.resumed_from
    params: dict[str, Any] = {"limit": max(1, limit)}
    if cursor:
        params["added_after"] = _before(cursor)
    # Objects whose reference may come on a later page: stix id -> (object, page, page's first date_added,
    # the problems of its last try).
    waiting: Waiting = {}
    token: str | None = None
    audit_org = None
    if user_id is not None:
        with Session(engine) as s:
            audit_org = s.scalar(select(User.org_id).where(User.id == user_id))
    # The next page is fetched while this one is stored: the partner's server and this node's checks and
    # writes then run at the same time. The cursor still moves only after a page is stored.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="taxii-pull")
    ahead: Future[tuple[dict[str, Any], Mapping[str, str]]] | None = pool.submit(client.page, coll, dict(params))
    try:
        while ahead is not None:
            body, headers = ahead.result()
            ahead = None
            last = headers.get("X-TAXII-Date-Added-Last")
            stuck = False
            if body.get("more"):
                token = body.get("next")
                if not token:  # a server without next tokens pages by added_after alone
                    stuck = not last or params.get("added_after") == last
                    params["added_after"] = last
                if not stuck:
                    ahead = pool.submit(client.page, coll, dict(params, **({"next": token} if token else {})))
            waiting, cursor = _store_page(engine, partner, coll, result, body, headers, waiting, cursor,
                                          user_id, audit_org)
            if stuck:
                raise InvalidInput(f"partner {partner.name} says more objects follow but gives neither a next "
                                   "token nor a date_added to continue from; what it sent is stored")
    finally:
        if ahead is not None:
            ahead.cancel()
        pool.shutdown(wait=True)
    for sid, (_, page, _, problems) in waiting.items():  # what they refer to never came
        result.problems += [PulledProblem(page, sid, p.property, p.reason) for p in problems]
    result.cursor = cursor
    with engine.begin() as conn:
        if cursor:
            conn.execute(update(PartnerCursor).where(PartnerCursor.partner_id == partner.id,
                                                     PartnerCursor.collection_id == coll.id)
                         .values(added_after=cursor))
        record_event(conn, "partner_pull", user_id=user_id, org_id=audit_org, record_type="partner_node",
                     record_id=partner.id, outcome="partial" if result.problems else "ok",
                     detail={"partner": partner.name, "collection": coll.title, "collection_id": coll.id,
                             "resumed_from": result.resumed_from, "cursor": cursor, **result.counts(),
                             "first_problems": [f"{p.stix_id} {p.property}: {p.reason}" for p in result.problems[:20]]})
    return result


Waiting = dict[str, tuple[dict[str, Any], int, str | None, list[Any]]]


def _store_page(engine: Engine, partner: Partner, coll: Collection, result: CollectionPull, body: dict[str, Any],
                headers: Mapping[str, str], waiting: Waiting, cursor: str | None, user_id: str | None,
                audit_org: str | None) -> tuple[Waiting, str | None]:
    """Store one page (and the objects still waiting for what they refer to); save the cursor after it."""
    result.pages += 1
    page_no = result.pages
    raw = body.get("objects") or []
    objects = [o for o in raw if isinstance(o, dict)]
    for o in raw:
        if not isinstance(o, dict):
            result.problems.append(PulledProblem(page_no, "", "(object)", "not a JSON object; not stored"))
    result.objects += len(raw)
    first, last = headers.get("X-TAXII-Date-Added-First"), headers.get("X-TAXII-Date-Added-Last")
    batch = [w[0] for w in waiting.values()] + objects
    if batch:
        imported = import_objects(engine, batch, file_name=f"TAXII pull {partner.name}: {coll.title}"[:400],
                                  partial=True, distribution=partner.distribution, partner_id=partner.id,
                                  user_id=user_id, org_id=audit_org)
        for name in ("created", "updated", "unchanged", "owned_here"):
            getattr(result, name).update(getattr(imported, name))
        result.skipped.update(imported.not_ours)
        by_id: dict[str, list[Any]] = {}
        for p in imported.problems:
            by_id.setdefault(p.stix_id, []).append(p)
        still: Waiting = {}
        page_of = {o.get("id"): o for o in objects}
        for sid, problems in by_id.items():
            obj, page, since = waiting[sid][:3] if sid in waiting else (page_of.get(sid, {}), page_no, first)
            if all(p.property in REFERENCES for p in problems) and obj:
                still[sid] = (obj, page, since, problems)  # what it refers to may come on a later page
            else:
                result.problems += [PulledProblem(page, sid, p.property, p.reason) for p in problems]
        waiting = still
    cursor = last or cursor
    held = min((w[2] for w in waiting.values() if w[2]), default=None)
    safe = min(c for c in (cursor, held) if c) if (cursor or held) else None
    _save_cursor(engine, partner.id, coll.id, added_after=safe, add_objects=len(raw))
    return waiting, cursor


# -- pushing ------------------------------------------------------------------------------------------------
@dataclass
class PushReport:
    partner: str
    collection: str = ""
    since: str | None = None
    pushed_until: str | None = None
    requests: int = 0
    objects: int = 0
    records: Counter[str] = field(default_factory=Counter)
    successes: int = 0
    pending: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)

    def to_text(self, max_failures: int = 20) -> str:
        since = f"changed after {self.since}" if self.since else "all"
        lines = [f"Push to partner {self.partner}, collection {self.collection!r} ({since})",
                 f"  sent        {self.objects:,} objects in {self.requests} requests"
                 + (" (" + ", ".join(f"{n:,} {k}" for k, n in sorted(self.records.items())) + ")" if self.records else ""),
                 f"  accepted    {self.successes:,}"]
        if self.pending:
            lines.append(f"  pending     {self.pending:,} (still being processed by the partner; the next push "
                         "sends them again)")
        if self.failures:
            lines.append(f"  refused     {len(self.failures):,}; the first {min(len(self.failures), max_failures)}:")
            lines += [f"    {sid}: {why}" for sid, why in self.failures[:max_failures]]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


def _inbox(collections: list[Collection], wanted: str | None) -> Collection:
    writable = [c for c in collections if c.can_write and (wanted is None or wanted in (c.id, c.title))]
    if not writable:
        which = f"writable collection {wanted!r}" if wanted else "collection this node may write to"
        raise NotFound(f"the partner has no {which}")
    return writable[0]


def _shareable(conn: Any, partner: Partner, key: bytes, since: dt.datetime | None,
               stats: Counter[str], persons: list[str]) -> Iterator[dict[str, Any]]:
    """What this node's own organisations own and the partner's organisation may see, changed since. A
    record pulled from elsewhere is its owner's to share, not ours."""
    with Session(bind=conn) as s:
        p = principal_for(s, org_id=partner.org_id, role="liaison")
    own = conn.scalars(select(Organisation.id).where(Organisation.domestic.is_(True))).all()
    exporter = StixExporter(conn, p, key, since=since, owners=own)
    for obj in map(as_dict, chain(exporter.persons(), exporter.operations(), exporter.incidents())):
        kind = kind_of(obj)
        if kind in RECORDS:
            stats[kind] += 1
        yield obj
    persons += exporter.stats.persons_full


def push(engine: Engine, partner: Partner, *, user_id: str | None = None, key: bytes | None = None,
         collection: str | None = None, chunk: int = CHUNK, session: requests.Session | None = None,
         retries: int = 3, backoff: float = 1.0, poll_timeout: float = 60) -> PushReport:
    """Send the partner what it may see of this node's own records, changed since the last push."""
    if not partner.active:
        raise InvalidInput(f"partner {partner.name!r} was removed; add it again to use it")
    if key is None:
        from narcotrack.config import get_settings

        key = get_settings().pseudonym_key_bytes()
    client = Client(partner, session=session, retries=retries, backoff=backoff)
    inbox = _inbox(client.collections(), collection)
    stored = _cursor(engine, partner.id, inbox.id)
    report = PushReport(partner.name, inbox.title, since=stored.pushed_until if stored else None)
    since = parse_time(report.since, "the stored push cursor") if report.since else None
    limit = client.call("read its API root", lambda: client.root.max_content_length) or 0
    # The next push sends what changed after this one began reading. (The STIX 'modified' of the newest
    # record is no cursor: it is cut to milliseconds, so that record would be sent again every time.)
    started = taxii_time(utcnow())
    persons: list[str] = []

    def send(objs: list[dict[str, Any]]) -> None:
        data = json.dumps({"objects": objs}, ensure_ascii=False).encode("utf-8")
        if limit and len(data) > limit and len(objs) > 1:
            send(objs[: len(objs) // 2])
            send(objs[len(objs) // 2:])
            return
        status = client.call(f"send objects to {inbox.title!r}", lambda: inbox.add_objects(
            data, wait_for_completion=True, poll_interval=1, timeout=poll_timeout))
        report.requests += 1
        report.objects += len(objs)
        report.successes += int(status.success_count or 0)
        report.pending += int(status.pending_count or 0)
        report.failures += [(str(f.get("id", "")), str(f.get("message", ""))) for f in status.failures or []]

    with engine.connect() as conn:
        batch: list[dict[str, Any]] = []
        for obj in _shareable(conn, partner, key, since, report.records, persons):
            batch.append(obj)
            if len(batch) >= max(1, chunk):
                send(batch)
                batch = []
        if batch:
            send(batch)
    # Advance only when the partner has decided on everything: pending objects are sent again next time.
    report.pushed_until = started if not report.pending else report.since
    with engine.begin() as conn:
        if persons:
            record_event(conn, "read_person_identity", user_id=user_id, org_id=partner.org_id, record_type="person",
                         detail={"persons": persons, "via": f"partners push {partner.name}"})
        record_event(conn, "export", user_id=user_id, org_id=partner.org_id, record_type="partner_node",
                     record_id=partner.id, outcome="partial" if report.failures or report.pending else "ok",
                     detail={"format": "taxii push", "partner": partner.name, "collection": inbox.title,
                             "since": report.since, "pushed_until": report.pushed_until, "objects": report.objects,
                             "records": dict(report.records), "accepted": report.successes,
                             "refused": len(report.failures), "pending": report.pending})
    _save_cursor(engine, partner.id, inbox.id, pushed_until=report.pushed_until)
    return report
