"""Operations: what joint operations achieve next to single-agency ones, with honest uncertainty.

Donors and ministries ask whether bilateral and multilateral operations are worth their cost. The store
links incidents to operations, so each operation's haul can be counted: kilograms seized, persons
arrested, and how much of the trafficking networks behind those persons it reached. Comparing the means
of joint and single-agency operations, with a bootstrap confidence interval of the difference, says how
large the gap is and how sure we can be of it — as an association only: joint operations are not assigned
at random (they may be mounted against bigger targets), so a gap is not the effect of working jointly.

Networks are not recorded as such. They are read off the arrests: persons arrested in the same incident
are linked, and a network is a connected component of that co-arrest graph (a person arrested twice joins
both incidents' networks). Only arrests the caller can see count, so networks are as complete as the
visible data and no more.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.stats import bootstrap

from narcotrack.errors import InvalidInput

JOINT_KINDS = frozenset({"national_joint", "bilateral", "multilateral"})
MEASURES = ("kg", "persons", "network_share")
STRATA = ("drug", "province", "kind")
OUTCOME_COLUMNS = (
    "operation_id", "name", "kind", "joint", "n_agencies", "drug", "province", "kg", "persons",
    "network_members", "network_share", "lead_org", "incidents", "seizures", "seizures_without_mass",
)
COMPARE_COLUMNS = (
    "stratum", "measure", "joint_n", "single_n", "joint_mean", "single_mean", "difference", "ci_low",
    "ci_high", "note",
)
METHOD = (
    "Mean per operation of joint (national joint, bilateral, multilateral) minus single-agency "
    "operations, with a 95 % percentile bootstrap interval (operations resampled within each group). "
    "Association, not cause: joint operations may be chosen for bigger targets. Networks are connected "
    "groups of persons arrested together, from visible arrests only."
)


def _require(frame: pd.DataFrame, name: str, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidInput(f"the {name} frame lacks the columns {', '.join(missing)}")


def co_arrest_networks(arrests: pd.DataFrame) -> dict[str, int]:
    """Network number of every arrested person: connected components of the co-arrest graph.

    Persons arrested in the same incident are linked; components are numbered 0, 1, … by descending size.
    """
    _require(arrests, "arrests", ("incident_id", "person_id"))
    rows = arrests.dropna(subset=["incident_id", "person_id"])
    p_idx, persons = pd.factorize(rows["person_id"].astype(str))
    i_idx, _ = pd.factorize(rows["incident_id"].astype(str))
    if len(persons) == 0:
        return {}
    # person-incident bipartite graph (incident nodes after the persons): components of it, restricted to
    # persons, are the components of the co-arrest graph; sparse, so millions of arrests take a second.
    n = len(persons) + int(i_idx.max()) + 1
    graph = coo_matrix((np.ones(len(p_idx)), (p_idx, i_idx + len(persons))), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    frame = pd.DataFrame({"person": np.asarray(persons), "label": labels[: len(persons)]})
    stats = frame.groupby("label")["person"].agg(["size", "min"]).sort_values(["size", "min"],
                                                                               ascending=[False, True])
    number = pd.Series(np.arange(len(stats)), index=stats.index)
    return dict(zip(frame["person"], number.loc[frame["label"]].to_numpy().tolist(), strict=True))


def _main(values: pd.Series, weights: pd.Series | None = None) -> str | None:
    """The most common value (by summed weight when given and positive, else by count); ties by name."""
    values = values.dropna()
    if values.empty:
        return None
    if weights is not None:
        w = weights.loc[values.index].fillna(0.0)
        if (w > 0).any():
            totals = w.groupby(values).sum()
            return str(sorted(totals.index, key=lambda v: (-totals[v], str(v)))[0])
    counts = values.value_counts()
    return str(sorted(counts.index, key=lambda v: (-counts[v], str(v)))[0])


def operation_outcomes(seizures: pd.DataFrame, arrests: pd.DataFrame, operations: pd.DataFrame) -> pd.DataFrame:
    """One row per operation: what its linked (visible) incidents seized and whom they arrested.

    Columns: operation_id, name, kind, joint (kind is national_joint, bilateral or multilateral),
    n_agencies, drug (main drug by kg, else by seizures), province (province with most of its incidents),
    kg (sum of known masses), persons (distinct persons arrested), network_members (members of the
    co-arrest networks those persons belong to), network_share (persons / network_members; NaN when no
    one was arrested), and lead_org, incidents, seizures, seizures_without_mass.
    """
    _require(seizures, "seizures", ("incident_id", "operation_id", "province_code", "drug", "mass_kg"))
    _require(arrests, "arrests", ("incident_id", "operation_id", "province_code", "person_id"))
    _require(operations, "operations", ("operation_id", "name", "kind", "n_agencies"))
    network_of = co_arrest_networks(arrests)
    sizes = pd.Series(network_of).value_counts()
    sz = seizures[seizures["operation_id"].notna()]
    ar = arrests[arrests["operation_id"].notna()]
    sz_by = dict(tuple(sz.groupby("operation_id")))
    ar_by = dict(tuple(ar.groupby("operation_id")))
    empty_sz, empty_ar = sz.iloc[0:0], ar.iloc[0:0]
    rows = []
    for op in operations.itertuples(index=False):
        s = sz_by.get(op.operation_id, empty_sz)
        a = ar_by.get(op.operation_id, empty_ar)
        mass = pd.to_numeric(s["mass_kg"], errors="coerce")
        persons = sorted(set(a["person_id"].dropna().astype(str)))
        networks = {network_of[p] for p in persons}
        members = int(sum(sizes[n] for n in networks))
        incidents = pd.concat([s[["incident_id", "province_code"]], a[["incident_id", "province_code"]]])
        incidents = incidents.drop_duplicates("incident_id")
        rows.append({
            "operation_id": op.operation_id,
            "name": op.name,
            "kind": op.kind,
            "joint": op.kind in JOINT_KINDS,
            "n_agencies": int(op.n_agencies),
            "drug": _main(s["drug"], mass),
            "province": _main(incidents["province_code"]),
            "kg": float(mass.sum()),
            "persons": len(persons),
            "network_members": members,
            "network_share": len(persons) / members if members else np.nan,
            "lead_org": getattr(op, "lead_org", None),
            "incidents": len(incidents),
            "seizures": len(s),
            "seizures_without_mass": int(mass.isna().sum()),
        })
    out = pd.DataFrame(rows, columns=list(OUTCOME_COLUMNS))
    out["joint"] = out["joint"].astype(bool)
    out.attrs["method"] = (
        "Per operation, from the incidents linked to it that the caller can see. joint = national joint, "
        "bilateral or multilateral. Networks: connected components of the co-arrest graph (persons "
        "arrested in the same incident are linked), visible arrests only."
    )
    return out


def _difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    result: np.ndarray = np.mean(x, axis=axis) - np.mean(y, axis=axis)
    return result


def _interval(x: np.ndarray, y: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    """95 % percentile bootstrap interval of mean(x) - mean(y), resampling x and y independently."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # identical values give a degenerate (zero-width) interval
        res = bootstrap((x, y), _difference, n_resamples=n_boot, vectorized=True, method="percentile",
                        confidence_level=0.95, rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def compare_operations(outcomes: pd.DataFrame, *, by: str | Sequence[str] | None = None, n_boot: int = 2000,
                       seed: int = 0, min_operations: int = 5) -> pd.DataFrame:
    """Joint versus single-agency operations, per stratum and measure, with bootstrap 95 % intervals.

    Columns: stratum ("all", or the stratum's values joined by " / "), measure (kg, persons,
    network_share), joint_n, single_n (operations with a value), joint_mean, single_mean, difference
    (joint minus single), ci_low, ci_high, note, and one column per ``by`` key. With ``by`` ("drug",
    "province", "kind" or several) the first rows are the "all" stratum. A group with fewer than
    ``min_operations`` operations gets no interval (NaN) and a note.
    """
    _require(outcomes, "outcomes", ("joint", *MEASURES))
    keys = [by] if isinstance(by, str) else list(by or [])
    bad = [k for k in keys if k not in STRATA]
    if bad:
        raise InvalidInput(f"by must be among {', '.join(STRATA)}, not {', '.join(bad)}")
    _require(outcomes, "outcomes", keys)
    if n_boot < 100:
        raise InvalidInput(f"n_boot must be at least 100, not {n_boot}")
    if min_operations < 2:
        raise InvalidInput(f"min_operations must be at least 2, not {min_operations}")
    groups: list[tuple[str, dict[str, object], pd.DataFrame]] = [("all", dict.fromkeys(keys), outcomes)]
    if keys:
        for values, part in outcomes.groupby(keys, sort=True, dropna=False):
            vals = values if isinstance(values, tuple) else (values,)
            label = " / ".join("—" if pd.isna(v) else str(v) for v in vals)
            groups.append((label, dict(zip(keys, vals, strict=True)), part))
    joint_mask = outcomes["joint"].astype(bool)
    rows = []
    for label, key_values, part in groups:
        is_joint = joint_mask.loc[part.index]
        for measure in MEASURES:
            values = pd.to_numeric(part[measure], errors="coerce")
            x = values[is_joint].dropna().to_numpy(dtype=float)
            y = values[~is_joint].dropna().to_numpy(dtype=float)
            jm = float(x.mean()) if len(x) else np.nan
            sm = float(y.mean()) if len(y) else np.nan
            low = high = np.nan
            if len(x) >= min_operations and len(y) >= min_operations:
                low, high = _interval(x, y, n_boot, seed)
                note = ""
            else:
                note = f"too few operations for an interval (joint {len(x)}, single {len(y)}; need {min_operations} each)"
            rows.append({"stratum": label, "measure": measure, "joint_n": len(x), "single_n": len(y),
                         "joint_mean": jm, "single_mean": sm, "difference": jm - sm, "ci_low": low,
                         "ci_high": high, "note": note, **key_values})
    out = pd.DataFrame(rows, columns=[*COMPARE_COLUMNS, *keys])
    out.attrs["method"] = METHOD + f" {n_boot} resamples; strata with fewer than {min_operations} operations per group get no interval."
    return out
