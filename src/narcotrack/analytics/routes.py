"""Trafficking routes: the flow graph, ranked corridors, crossings, route shifts and displacement.

Every seizure says where its drugs were produced, where they left from, which countries they crossed,
where they were seized and where they were going. Laid end to end, these give a path of places; summed
over seizures, a weighted graph that shows which routes carry the traffic and how that changes. The same
functions serve narcotrack's own records (``tables.seizures``) and the UNODC IDS file
(``sources.ids_seizures``), so Cambodian routes can be read against the region's.

The path of one seizure (the rules are explained with examples in docs/analytics-routes.md):
producing country → departure country → listed transit countries → the seizing country, when it is none
of the others (IDS rows: a seizure made in transit) → the Cambodian crossing point (``place_code`` of a
Cambodian seizure made at a border checkpoint, seaport or airport; it stands for Cambodia) → destination.
Missing places are skipped ('Unknown' is missing, never a node) and a place repeated in a row is one node.
The crossing sits next to Cambodia on the path: before the first Cambodian transit (or before the
destination) when drugs come in, after the last Cambodian node when the routing is outbound.

A *corridor* is the same path without the listed transit countries (they are recorded so unevenly that
they would split one corridor into many): producing → departure → seizing country in transit → crossing →
destination, written as text ("MM → LA → PT-KH-POIPET → VN"). A seizure has a corridor when at least two
distinct places of it are known.

Everything works on distinct routes, not rows: the few thousand distinct combinations of route columns
are worked out once in Python and the counts are spread back with numpy, so 200,000 seizures take a
fraction of a second.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
from scipy import stats

from narcotrack.errors import InvalidInput

STAGES = ("producing", "departure", "transit", "entry", "destination")
CROSSING_KINDS = ("border_checkpoint", "seaport", "airport")
OUTBOUND = frozenset({"outbound", "border_outbound"})
SHARED_NODES = ("departure", "entry", "destination")
ARROW = " → "
NEEDED = (
    "occurred_on", "country", "place_code", "place_kind", "mass_kg", "producing_country", "origin_country",
    "transit_countries", "destination_country", "routing",
)
DATA_DIR = Path(__file__).with_name("data")

FLOWS_COLUMNS = ("source", "target", "source_stage", "target_stage", "seizures", "kg")
CORRIDOR_COLUMNS = (
    "rank", "corridor", "producing", "departure", "entry", "destination", "seizures", "kg", "transit", "share",
)
CROSSING_COLUMNS = ("rank", "place_code", "place_kind", "province_code", "seizures", "kg", "country", "incidents")
SHIFT_COLUMNS = (
    "corridor", "seizures_before", "seizures_after", "kg_before", "kg_after", "rate_ratio", "p_value",
    "q_value", "status", "expected_after", "new", "producing", "departure", "transit", "entry", "destination",
)
DISPLACEMENT_COLUMNS = (
    "corridor", "role", "seizures_before", "seizures_after", "change", "change_pct", "p_value", "q_value",
    "shared", "kg_before", "kg_after", "window_days",
)
PATH_RULE = (
    "Each seizure's path runs producing → departure → transit countries → the seizing country when it is "
    "none of these → the Cambodian crossing point (border checkpoint, seaport or airport) → destination; "
    "unknown places are skipped."
)


# -- distinct routes ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Routes:
    """Distinct route combinations of a seizures frame and, per row, the index of its combination."""

    row_combo: np.ndarray  # one per seizure row
    combos: pd.DataFrame  # producing, departure, transit, entry, destination, corridor, edges


def _codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(integer code per row, distinct stripped strings): one hash pass over the rows, "" for missing."""
    codes, uniques = pd.factorize(values.to_numpy(dtype=object), use_na_sentinel=False)
    clean = np.empty(len(uniques), dtype=object)
    clean[:] = ["" if v is None or v != v else str(v).strip() for v in uniques]
    merged, distinct = pd.factorize(clean)  # "" and None, or padded spellings, become one
    return np.asarray(merged, dtype=np.int64)[codes], np.asarray(distinct, dtype=object)


def _check(seizures: pd.DataFrame) -> None:
    missing = [c for c in NEEDED if c not in seizures.columns]
    if missing:
        raise InvalidInput(f"the seizures table lacks the columns {', '.join(missing)}")


def _path(producing: str, departure: str, transits: Sequence[str], seized: str, entry: str,
          destination: str, outbound: bool) -> tuple[list[tuple[str, str]], str]:
    """(nodes as (place, stage), the seizing country when it counts as transit, else "")."""
    nodes = [(producing, "producing"), (departure, "departure"), *((t, "transit") for t in transits)]
    in_transit = ""
    if seized and not entry and seized not in {producing, departure, destination, *transits}:
        in_transit = seized
        nodes.append((seized, "transit"))
    nodes = [(c, s) for c, s in nodes if c]
    if entry:
        kh = [i for i, (c, s) in enumerate(nodes) if c == "KH"]
        kh_transit = [i for i in kh if nodes[i][1] == "transit"]
        if outbound and kh:
            pos = kh[-1] + 1
        elif not outbound and kh_transit:
            pos = kh_transit[0]
        else:
            pos = len(nodes)
        nodes.insert(pos, (entry, "entry"))
    if destination:
        nodes.append((destination, "destination"))
    return nodes, in_transit


def _edges(nodes: list[tuple[str, str]]) -> list[tuple[str, str, str, str]]:
    """Edges between runs of the same place; a run leaves with its last stage and is entered at its first."""
    runs: list[list[str]] = []
    for code, stage in nodes:
        if runs and runs[-1][0] == code:
            runs[-1][2] = stage
        else:
            runs.append([code, stage, stage])
    return [(a[0], b[0], a[2], b[1]) for a, b in pairwise(runs)]


def _corridor(parts: Iterable[str]) -> str | None:
    tokens: list[str] = []
    for p in parts:
        if p and (not tokens or tokens[-1] != p):
            tokens.append(p)
    return ARROW.join(tokens) if len(tokens) >= 2 else None


def _routes(seizures: pd.DataFrame) -> _Routes:
    _check(seizures)
    names = {"producing": "producing_country", "departure": "origin_country", "transits": "transit_countries",
             "seized": "country", "destination": "destination_country", "place": "place_code"}
    coded = {k: _codes(seizures[c]) for k, c in names.items()}
    seized_codes, seized_values = coded["seized"]
    place_codes, place_values = coded["place"]
    is_kh = seized_codes == (np.flatnonzero(seized_values == "KH")[0] if (seized_values == "KH").any() else -2)
    crossing = is_kh & seizures["place_kind"].isin(CROSSING_KINDS).to_numpy() & (place_values[place_codes] != "")
    entry = (np.where(crossing, place_codes, -1), place_values)
    outbound = seizures["routing"].isin(OUTBOUND).to_numpy().astype(np.int64)
    parts = [coded[k][0] for k in ("producing", "departure", "transits", "seized", "destination")]
    key = np.zeros(len(seizures), dtype=np.int64)
    for codes in [*parts, entry[0], outbound]:
        key, _ = pd.factorize(key * (int(codes.max(initial=0)) + 2) + codes + 1)
    row_combo = np.asarray(key, dtype=np.int64)
    _, first = np.unique(row_combo, return_index=True)

    def value(name: str, i: int) -> str:
        codes, values = coded[name]
        return str(values[codes[i]])

    records = []
    for i in first:
        p, d, dest, seized = value("producing", i), value("departure", i), value("destination", i), value("seized", i)
        e = str(entry[1][entry[0][i]]) if entry[0][i] >= 0 else ""
        nodes, in_transit = _path(p, d, tuple(value("transits", i).split()), seized, e, dest, bool(outbound[i]))
        records.append((p, d, in_transit, e, dest, _corridor((p, d, in_transit, e, dest)), _edges(nodes)))
    combos = pd.DataFrame.from_records(
        records, columns=["producing", "departure", "transit", "entry", "destination", "corridor", "edges"]
    )
    return _Routes(row_combo, combos)


def _weights(seizures: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    kg = pd.to_numeric(seizures["mass_kg"], errors="coerce").to_numpy(dtype=float)
    return np.ones(len(kg)), np.nan_to_num(kg, nan=0.0)


def _corridor_table(routes: _Routes, seizures: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """(one row per corridor: its columns from its most frequent combination, seizures, kg; row → corridor)."""
    combos = routes.combos
    n_combo = len(combos)
    ones, kg = _weights(seizures)
    combo_n = np.bincount(routes.row_combo, weights=ones, minlength=n_combo)
    combo_kg = np.bincount(routes.row_combo, weights=kg, minlength=n_combo)
    has = combos["corridor"].notna().to_numpy()
    codes, _ = pd.factorize(combos["corridor"])  # -1 for no corridor
    frame = combos.assign(seizures=combo_n, kg=combo_kg, cid=codes)[has]
    frame = frame.sort_values(["cid", "seizures"], ascending=[True, False], kind="stable")
    table = frame.groupby("cid", sort=True).agg(
        corridor=("corridor", "first"), producing=("producing", "first"), departure=("departure", "first"),
        transit=("transit", "first"), entry=("entry", "first"), destination=("destination", "first"),
        seizures=("seizures", "sum"), kg=("kg", "sum"),
    ).reset_index(drop=True)
    table["seizures"] = table["seizures"].astype(np.int64)
    for col in ("producing", "departure", "transit", "entry", "destination"):
        table[col] = table[col].replace("", None)
    return table, np.asarray(codes, dtype=np.int64)[routes.row_combo]


# -- flows and corridors --------------------------------------------------------------------------------
def flows(seizures: pd.DataFrame) -> pd.DataFrame:
    """Directed edges between places, weighted by the seizures (and kg) whose path runs along them."""
    routes = _routes(seizures)
    ones, kg = _weights(seizures)
    n_combo = len(routes.combos)
    combo_n = np.bincount(routes.row_combo, weights=ones, minlength=n_combo)
    combo_kg = np.bincount(routes.row_combo, weights=kg, minlength=n_combo)
    rows = [
        (*edge, combo_n[i], combo_kg[i])
        for i, edges in enumerate(routes.combos["edges"])
        for edge in edges
    ]
    edges = pd.DataFrame.from_records(rows, columns=list(FLOWS_COLUMNS))
    if len(edges):
        edges = edges.groupby(list(FLOWS_COLUMNS[:4]), as_index=False, sort=False)[["seizures", "kg"]].sum()
        edges = edges.sort_values(["seizures", "kg", "source", "target"], ascending=[False, False, True, True])
    edges = edges.reset_index(drop=True).astype({"seizures": np.int64, "kg": float})
    routed = sum(combo_n[i] for i, e in enumerate(routes.combos["edges"]) if e)
    edges.attrs["method"] = (
        PATH_RULE + " An edge joins consecutive places; its weight is the number of seizures (and their kg) "
        f"whose path runs along it ({int(routed):,} of {len(seizures):,} seizures have at least one edge)."
    )
    edges.attrs["seizures_routed"] = int(routed)
    return edges


def flow_graph(edges: pd.DataFrame) -> nx.DiGraph:
    """A networkx DiGraph of ``flows`` output: edge weights summed over stages; nodes carry their stages."""
    missing = [c for c in FLOWS_COLUMNS if c not in edges.columns]
    if missing:
        raise InvalidInput(f"the flows table lacks the columns {', '.join(missing)}")
    graph = nx.DiGraph(method=edges.attrs.get("method", PATH_RULE))
    for r in edges.itertuples(index=False):
        for node, stage in ((r.source, r.source_stage), (r.target, r.target_stage)):
            if node not in graph:
                graph.add_node(node, stages=set())
            graph.nodes[node]["stages"].add(stage)
        if graph.has_edge(r.source, r.target):
            data = graph.edges[r.source, r.target]
            data["seizures"] += int(r.seizures)
            data["kg"] += float(r.kg)
            data["stages"].append(f"{r.source_stage}→{r.target_stage}")
        else:
            graph.add_edge(r.source, r.target, seizures=int(r.seizures), kg=float(r.kg),
                           stages=[f"{r.source_stage}→{r.target_stage}"])
    for node in graph.nodes:
        graph.nodes[node]["stages"] = sorted(graph.nodes[node]["stages"], key=STAGES.index)
    return graph


def corridors(seizures: pd.DataFrame, *, top: int | None = 20) -> pd.DataFrame:
    """Corridors ranked by seizures (then kg); ``top=None`` gives all of them."""
    routes = _routes(seizures)
    table, row_cid = _corridor_table(routes, seizures)
    on_corridor = int((row_cid >= 0).sum())
    table["share"] = table["seizures"] / on_corridor if on_corridor else np.nan
    table = table.sort_values(["seizures", "kg", "corridor"], ascending=[False, False, True]).reset_index(drop=True)
    if top is not None:
        if top < 1:
            raise InvalidInput("top must be at least 1")
        table = table.head(top)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    out = table[list(CORRIDOR_COLUMNS)].reset_index(drop=True)
    out.attrs["method"] = (
        "A corridor is the path producing → departure → seizing country in transit → Cambodian crossing → "
        "destination (listed transit countries left out, unknown places skipped); corridors are ranked by "
        f"seizures. {on_corridor:,} of {len(seizures):,} seizures have a corridor (two known places); "
        "share is of those."
    )
    out.attrs["seizures_on_corridors"] = on_corridor
    return out


def crossings(seizures: pd.DataFrame, *, country: str | None = None) -> pd.DataFrame:
    """Border checkpoints, seaports and airports ranked by seizures; ``country`` keeps one seizing country."""
    for col in ("place_code", "place_kind", "province_code", "country", "mass_kg", "incident_id"):
        if col not in seizures.columns:
            raise InvalidInput(f"the seizures table lacks the column {col}")
    rows = seizures[seizures["place_kind"].isin(CROSSING_KINDS) & seizures["place_code"].notna()]
    if country is not None:
        rows = rows[rows["country"] == country]
    keys = ["place_code", "place_kind", "province_code", "country"]
    frame = rows[[*keys, "incident_id"]].assign(kg=pd.to_numeric(rows["mass_kg"], errors="coerce"))
    table = frame.groupby(keys, dropna=False, sort=False).agg(
        seizures=("incident_id", "size"), kg=("kg", "sum"), incidents=("incident_id", "nunique")
    ).reset_index()
    table = table.sort_values(["seizures", "kg", "place_code"], ascending=[False, False, True]).reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    out = table[list(CROSSING_COLUMNS)].astype({"seizures": np.int64, "incidents": np.int64, "kg": float})
    out.attrs["method"] = (
        "Seizures made at border checkpoints, seaports and airports (the incident's place kind), ranked by "
        "number of seizures; kg sums the known masses. Outside Cambodia the place is the seizing country."
    )
    return out


# -- route shifts ---------------------------------------------------------------------------------------
def _window(value: Any, name: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    try:
        start, end = (pd.Timestamp(v).normalize() for v in value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{name} must be a pair of dates (start, end)") from exc
    if pd.isna(start) or pd.isna(end) or end < start:
        raise InvalidInput(f"{name}: the end date must be on or after the start date")
    return start, end


def _binom_p(k: np.ndarray, n: np.ndarray, p0: float) -> np.ndarray:
    """Two-sided exact binomial p-values, computed once per distinct (k, n)."""
    out = np.full(len(k), np.nan)
    memo: dict[tuple[int, int], float] = {}
    for i, (ki, ni) in enumerate(zip(k.tolist(), n.tolist(), strict=True)):
        if ni <= 0:
            continue
        key = (int(ki), int(ni))
        if key not in memo:
            memo[key] = float(stats.binomtest(key[0], key[1], p0).pvalue)
        out[i] = memo[key]
    return out


def _q_values(p: np.ndarray) -> np.ndarray:
    q = np.full(len(p), np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        q[ok] = stats.false_discovery_control(p[ok], method="bh")
    return q


def _dates(seizures: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(seizures["occurred_on"], errors="coerce")


def route_shifts(seizures: pd.DataFrame, *, before: tuple[Any, Any], after: tuple[Any, Any],
                 alpha: float = 0.05, baseline: str = "seizures") -> pd.DataFrame:
    """Corridors that emerged or declined between two periods (conditional binomial test, BH q-values).

    ``baseline="seizures"`` (default) tests a corridor's count against the total number of seizures in each
    period (a change of share: reporting that grows everywhere is no shift); ``baseline="days"`` against
    the periods' lengths (a change of rate per day).
    """
    b0, b1 = _window(before, "before")
    a0, a1 = _window(after, "after")
    if a0 <= b1 and b0 <= a1:
        raise InvalidInput("the before and after periods overlap")
    if baseline not in ("seizures", "days"):
        raise InvalidInput("baseline must be 'seizures' or 'days'")
    if not 0 < alpha < 1:
        raise InvalidInput("alpha must be between 0 and 1")
    routes = _routes(seizures)
    table, row_cid = _corridor_table(routes, seizures)
    when = _dates(seizures)
    in_b = ((when >= b0) & (when <= b1)).to_numpy()
    in_a = ((when >= a0) & (when <= a1)).to_numpy()
    if baseline == "seizures":
        e1, e2 = float(in_b.sum()), float(in_a.sum())
    else:
        e1, e2 = float((b1 - b0).days + 1), float((a1 - a0).days + 1)
    if e1 == 0 or e2 == 0:
        raise InvalidInput("no seizures in the " + ("before" if e1 == 0 else "after") + " period")
    _, kg = _weights(seizures)
    n_cor = len(table)

    def count(mask: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        sel = mask & (row_cid >= 0)
        return np.bincount(row_cid[sel], weights=None if weights is None else weights[sel], minlength=n_cor)

    n1, n2 = count(in_b), count(in_a)
    k1, k2 = count(in_b, kg), count(in_a, kg)
    present = (n1 + n2) > 0
    p0 = e2 / (e1 + e2)
    p = _binom_p(n2[present], (n1 + n2)[present], p0)
    q = _q_values(p)
    n1, n2, k1, k2, t = n1[present], n2[present], k1[present], k2[present], table[present]
    up = n2 / e2 > n1 / e1
    status = np.where(q < alpha, np.where(up, "emerged", "declined"), "steady")
    out = pd.DataFrame({
        "corridor": t["corridor"].to_numpy(), "seizures_before": n1.astype(np.int64),
        "seizures_after": n2.astype(np.int64), "kg_before": k1, "kg_after": k2,
        "rate_ratio": ((n2 + 0.5) / e2) / ((n1 + 0.5) / e1), "p_value": p, "q_value": q, "status": status,
        "expected_after": (n1 + n2) * p0, "new": n1 == 0,
        **{c: t[c].to_numpy() for c in ("producing", "departure", "transit", "entry", "destination")},
    })
    order = out["status"].map({"emerged": 0, "declined": 1, "steady": 2})
    out = out.assign(_o=order, _d=-(out["seizures_after"] - out["seizures_before"]).abs())
    out = out.sort_values(["_o", "q_value", "_d", "corridor"]).drop(columns=["_o", "_d"]).reset_index(drop=True)
    basis = "total seizures in each period" if baseline == "seizures" else "the lengths of the periods"
    out.attrs["method"] = (
        "Poisson rate comparison per corridor: given its seizures in both periods, the count after is "
        f"binomial with the share expected from {basis} (scipy binomtest, two-sided); Benjamini-Hochberg "
        f"q-values over all corridors; emerged/declined when q < {alpha:g}. rate_ratio adds 0.5 to both "
        "counts so a new corridor gets a finite ratio."
    )
    out.attrs.update(before=(b0.date().isoformat(), b1.date().isoformat()),
                     after=(a0.date().isoformat(), a1.date().isoformat()), exposure_before=e1,
                     exposure_after=e2, baseline=baseline)
    return out


# -- displacement after an operation -------------------------------------------------------------------
def displacement(seizures: pd.DataFrame, operations: pd.DataFrame, operation_id: str, *,
                 window_days: int = 180, shared: Sequence[str] = SHARED_NODES,
                 baseline: str = "days") -> pd.DataFrame:
    """Seizures on the operation's corridors and their neighbours in equal windows before and after it.

    The operation's own seizures define the targeted corridors and are not counted. Neighbours share a
    departure, crossing or destination (``shared``) with a targeted corridor. Windows are ``window_days``
    long, shortened equally when the data do not reach that far. ``baseline="days"`` tests after vs before
    at 1:1; ``baseline="seizures"`` against the seizures on all other corridors in the same windows.
    """
    if window_days < 1:
        raise InvalidInput("window_days must be at least 1")
    if baseline not in ("seizures", "days"):
        raise InvalidInput("baseline must be 'seizures' or 'days'")
    bad = [s for s in shared if s not in SHARED_NODES]
    if bad:
        raise InvalidInput(f"shared may name {', '.join(SHARED_NODES)}, not {', '.join(bad)}")
    if "operation_id" not in seizures.columns:
        raise InvalidInput("the seizures table lacks the column operation_id")
    op = operations[operations["operation_id"] == operation_id]
    if op.empty:
        raise InvalidInput(f"no operation {operation_id!r} among the operations given")
    start = pd.Timestamp(op["start_date"].iloc[0])
    end = pd.Timestamp(op["end_date"].iloc[0]) if pd.notna(op["end_date"].iloc[0]) else start
    if pd.isna(start):
        raise InvalidInput(f"operation {operation_id!r} has no start date")
    routes = _routes(seizures)
    table, row_cid = _corridor_table(routes, seizures)
    own = (seizures["operation_id"] == operation_id).to_numpy()
    targeted = sorted(set(row_cid[own & (row_cid >= 0)].tolist()))
    if not targeted:
        raise InvalidInput(f"operation {operation_id!r} has no seizure on a known corridor")
    roles: dict[int, tuple[str, str]] = {c: ("targeted", "") for c in targeted}
    for field in shared:
        values = {v for v in table.loc[targeted, field] if v}
        for cid, value in table[field].items():
            if value in values and (cid not in roles or roles[cid][0] == "neighbouring"):
                note = f"{field} {value}"
                old = roles.get(int(cid), ("neighbouring", ""))[1]
                roles[int(cid)] = ("neighbouring", f"{old}, {note}" if old else note)
    when = _dates(seizures)
    dated = when.notna().to_numpy() & ~own
    if not dated.any():
        raise InvalidInput("no dated seizures besides the operation's own")
    lo, hi = when[dated].min(), when[dated].max()
    days = min(window_days, (start - lo).days, (hi - end).days)
    if days < 1:
        raise InvalidInput(f"the data do not reach before the start or after the end of {operation_id!r}")
    w = pd.Timedelta(days=days)
    in_b = (dated & (when >= start - w) & (when < start)).to_numpy()
    in_a = (dated & (when > end) & (when <= end + w)).to_numpy()
    _, kg = _weights(seizures)
    n_cor = len(table)

    def count(mask: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        sel = mask & (row_cid >= 0)
        return np.bincount(row_cid[sel], weights=None if weights is None else weights[sel], minlength=n_cor)

    n1, n2, k1, k2 = count(in_b), count(in_a), count(in_b, kg), count(in_a, kg)
    involved = np.isin(row_cid, list(roles))
    if baseline == "days":
        p0 = 0.5
    else:
        e1, e2 = float((in_b & ~involved).sum()), float((in_a & ~involved).sum())
        if e1 == 0 or e2 == 0:
            raise InvalidInput("no seizures on other corridors in one of the windows: use baseline='days'")
        p0 = e2 / (e1 + e2)
    ids = [c for c in roles if roles[c][0] == "targeted" or n1[c] + n2[c] > 0]
    ids.sort(key=lambda c: (roles[c][0] != "targeted", -(n1[c] + n2[c]), table.at[c, "corridor"]))
    b, a = n1[ids], n2[ids]
    p = _binom_p(a, a + b, p0)
    out = pd.DataFrame({
        "corridor": table.loc[ids, "corridor"].to_numpy(), "role": [roles[c][0] for c in ids],
        "seizures_before": b.astype(np.int64), "seizures_after": a.astype(np.int64),
        "change": (a - b).astype(np.int64),
        "change_pct": np.where(b > 0, 100 * (a - b) / np.where(b > 0, b, 1), np.nan),
        "p_value": p, "q_value": _q_values(p), "shared": [roles[c][1] for c in ids],
        "kg_before": k1[ids], "kg_after": k2[ids], "window_days": days,
    })
    totals = {}
    for role in ("targeted", "neighbouring"):
        sel = out["role"] == role
        tb, ta = int(out.loc[sel, "seizures_before"].sum()), int(out.loc[sel, "seizures_after"].sum())
        pv = _binom_p(np.array([ta]), np.array([ta + tb]), p0)[0]
        totals[role] = {"seizures_before": tb, "seizures_after": ta, "p_value": float(pv)}
    basis = "1:1 (equal windows)" if baseline == "days" else "the ratio of seizures on all other corridors"
    out.attrs["method"] = (
        f"Seizures in {days}-day windows before the operation's start and after its end (its own seizures "
        "left out), on its corridors (targeted) and on corridors sharing a "
        f"{'/'.join(shared)} with them (neighbouring); exact binomial test of after vs before against "
        f"{basis}, BH q-values. A rise on neighbours is consistent with displacement but does not prove it."
    )
    out.attrs.update(operation_id=operation_id, window_days=days, totals=totals,
                     before=((start - w).date().isoformat(), (start - pd.Timedelta(days=1)).date().isoformat()),
                     after=((end + pd.Timedelta(days=1)).date().isoformat(), (end + w).date().isoformat()))
    return out


# -- coordinates for the map ----------------------------------------------------------------------------
@cache
def _countries() -> pd.DataFrame:
    frame = pd.read_csv(DATA_DIR / "country_centroids.csv", keep_default_na=False, dtype={"code": str})
    return frame.assign(kind="country")


@cache
def _demo_points() -> pd.DataFrame:
    from narcotrack.ingest.demo_calibration import load_data

    points = load_data("demo_routes.yaml")["points"]
    return pd.DataFrame(
        [(p["code"], float(p["lat"]), float(p["lon"]), p["name_en"], p["kind"]) for p in points],
        columns=["code", "lat", "lon", "name_en", "kind"],
    )


@cache
def _areas() -> pd.DataFrame:
    """Cambodian districts at their points (``geo.district_centroids``), provinces at the mean of those."""
    from narcotrack.analytics import geo
    from narcotrack.domain.places import iter_gazetteer

    districts = geo.district_centroids()[["code", "province_code", "name_en", "lat", "lon"]]
    provinces = districts.groupby("province_code", as_index=False)[["lat", "lon"]].mean()
    names = {p.code: p.name_en for p in iter_gazetteer() if p.level == "province"}
    provinces = provinces.rename(columns={"province_code": "code"}).assign(kind="province")
    provinces["name_en"] = provinces["code"].map(names)
    return pd.concat([provinces, districts.drop(columns="province_code").assign(kind="district")],
                     ignore_index=True)


def node_coordinates(conn: Any = None, *, areas: bool = True) -> pd.DataFrame:
    """code, lat, lon, name_en, kind of every country and Cambodian crossing point, for the flow map.

    Countries: a point inside the country's largest polygon (Natural Earth). Cambodian points: the named
    points of the demo routes, overridden and completed by places of the store with coordinates when a
    connection (or session) ``conn`` is given. ``areas`` adds Cambodian districts and provinces (a
    crossing recorded at district level, or an IDS row's province, is a node too).
    """
    points = _demo_points()
    if conn is not None:
        from sqlalchemy import select

        from narcotrack.store.schema import Place

        q = select(Place.code, Place.lat, Place.lon, Place.name_en, Place.kind).where(
            Place.lat.is_not(None), Place.lon.is_not(None), Place.level != "country"
        )
        stored = pd.DataFrame.from_records(conn.execute(q).all(), columns=["code", "lat", "lon", "name_en", "kind"])
        if len(stored):  # an empty frame in a concat would decide the column types (pandas warns)
            points = pd.concat([stored, points[~points["code"].isin(stored["code"])]], ignore_index=True)
    parts = [_countries(), points]
    if areas:
        parts.append(_areas()[lambda f: ~f["code"].isin(points["code"])])
    out = pd.concat(parts, ignore_index=True)[["code", "lat", "lon", "name_en", "kind"]]
    out.attrs["method"] = (
        "Countries at a point of their largest polygon (Natural Earth 1:50m, public domain); Cambodian "
        "crossing points at the coordinates of their nearest town (GeoNames, CC BY 4.0) or as stored; "
        "districts at their GeoNames-derived points, provinces at the mean of their districts' points."
    )
    return out


def period_bounds(year: int) -> tuple[dt.date, dt.date]:
    """(1 January, 31 December) of ``year``: a convenience for ``route_shifts(before=..., after=...)``."""
    return dt.date(year, 1, 1), dt.date(year, 12, 31)
