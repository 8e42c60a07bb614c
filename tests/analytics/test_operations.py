"""Joint versus single-agency operations: outcomes per operation, networks, bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from narcotrack.analytics import tables
from narcotrack.analytics.operations import (
    COMPARE_COLUMNS,
    OUTCOME_COLUMNS,
    co_arrest_networks,
    compare_operations,
    operation_outcomes,
)
from narcotrack.errors import InvalidInput

# Incidents: i1 arrests a+b, i2 arrests b+c (b links them), i3 arrests d alone, i4 arrests e+f, i5 g+h.
ARRESTS = pd.DataFrame(
    [
        ("i1", "op-bi", "KH-01", "a"), ("i1", "op-bi", "KH-01", "b"),
        ("i2", "op-multi", "KH-02", "b"), ("i2", "op-multi", "KH-02", "c"),
        ("i3", "op-single", "KH-12", "d"),
        ("i4", "op-multi", "KH-02", "e"), ("i4", "op-multi", "KH-02", "f"),
        ("i5", None, "KH-12", "g"), ("i5", None, "KH-12", "h"),
    ],
    columns=["incident_id", "operation_id", "province_code", "person_id"],
)
SEIZURES = pd.DataFrame(
    [
        ("i1", "op-bi", "KH-01", "heroin", 2.0),
        ("i1", "op-bi", "KH-01", "ketamine", 5.0),
        ("i2", "op-multi", "KH-02", "methamphetamine_tablets", 1.0),
        ("i6", "op-multi", "KH-03", "methamphetamine_tablets", np.nan),
        ("i3", "op-single", "KH-12", "cannabis_herb", 0.5),
    ],
    columns=["incident_id", "operation_id", "province_code", "drug", "mass_kg"],
)
OPERATIONS = pd.DataFrame(
    [
        ("op-bi", "Op Bi", "bilateral", "KH-NACD", 2),
        ("op-multi", "Op Multi", "multilateral", "UNODC", 4),
        ("op-single", "Op Single", "single_agency", "KH-PP-12", 1),
        ("op-empty", "Op Empty", "national_joint", "KH-NACD", 3),
    ],
    columns=["operation_id", "name", "kind", "lead_org", "n_agencies"],
)


def test_co_arrest_networks_are_connected_components() -> None:
    net = co_arrest_networks(ARRESTS)
    groups: dict[int, set[str]] = {}
    for person, n in net.items():
        groups.setdefault(n, set()).add(person)
    assert sorted(map(sorted, groups.values())) == [["a", "b", "c"], ["d"], ["e", "f"], ["g", "h"]]
    assert net["a"] == 0  # the largest network is numbered first


def test_operation_outcomes_on_a_hand_built_case() -> None:
    out = operation_outcomes(SEIZURES, ARRESTS, OPERATIONS)
    assert list(out.columns) == list(OUTCOME_COLUMNS)
    row = out.set_index("operation_id")
    bi = row.loc["op-bi"]
    assert bool(bi["joint"]) and bi["kg"] == 7.0 and bi["drug"] == "ketamine" and bi["province"] == "KH-01"
    assert bi["persons"] == 2 and bi["network_members"] == 3  # a, b of the network {a, b, c}
    assert bi["network_share"] == pytest.approx(2 / 3)
    multi = row.loc["op-multi"]
    assert multi["persons"] == 4 and multi["network_members"] == 5  # b, c of {a,b,c} and e, f of {e,f}
    assert multi["network_share"] == pytest.approx(0.8)
    assert multi["kg"] == 1.0 and multi["seizures_without_mass"] == 1 and multi["incidents"] == 3
    assert multi["province"] == "KH-02" and multi["drug"] == "methamphetamine_tablets"
    single = row.loc["op-single"]
    assert not bool(single["joint"]) and single["network_share"] == 1.0 and single["kg"] == 0.5
    empty = row.loc["op-empty"]
    assert bool(empty["joint"]) and empty["kg"] == 0 and empty["persons"] == 0
    assert np.isnan(empty["network_share"]) and empty["drug"] is None
    assert "co-arrest" in out.attrs["method"]


def _outcomes(joint: np.ndarray, single: np.ndarray, **extra: object) -> pd.DataFrame:
    n = len(joint) + len(single)
    frame = pd.DataFrame({
        "operation_id": [f"op{i}" for i in range(n)],
        "joint": [True] * len(joint) + [False] * len(single),
        "kg": np.concatenate([joint, single]),
        "persons": np.concatenate([joint, single]).round(),
        "network_share": np.full(n, 0.5),
    })
    for key, value in extra.items():
        frame[key] = value
    return frame


def test_joint_operations_seizing_twice_as_much_are_told_apart() -> None:
    single = np.random.default_rng(3).lognormal(2.0, 0.5, 40)
    joint = 2 * single  # every joint operation seizes exactly twice its single-agency twin
    result = compare_operations(_outcomes(joint, single))
    assert list(result.columns) == list(COMPARE_COLUMNS)
    kg = result.set_index("measure").loc["kg"]
    planted = single.mean()  # mean(2x) - mean(x)
    assert kg["difference"] == pytest.approx(planted)
    assert kg["ci_low"] > 0  # excludes 0
    assert kg["ci_low"] < planted < kg["ci_high"]
    assert kg["joint_n"] == 40 and kg["single_n"] == 40
    share = result.set_index("measure").loc["network_share"]
    assert share["difference"] == 0 and share["ci_low"] == 0 and share["ci_high"] == 0
    assert "association, not cause" in result.attrs["method"].lower()


def test_same_distribution_gives_an_interval_around_zero() -> None:
    values = np.random.default_rng(4).exponential(10, 40)
    same = compare_operations(_outcomes(values[::-1].copy(), values)).set_index("measure").loc["kg"]
    assert same["difference"] == pytest.approx(0) and same["ci_low"] < 0 < same["ci_high"]
    # Coverage: joint and single drawn from one distribution, the 95 % interval holds 0 most of the time.
    rng = np.random.default_rng(5)
    covered = 0
    for draw in range(100):
        joint, single = rng.exponential(10, 30), rng.exponential(10, 50)
        kg = compare_operations(_outcomes(joint, single), n_boot=1000, seed=draw).set_index("measure").loc["kg"]
        covered += int(kg["ci_low"] < 0 < kg["ci_high"])
    assert covered >= 88  # nominal 95; percentile intervals on skewed data run a little short


def test_intervals_are_reproducible_and_depend_on_the_seed() -> None:
    rng = np.random.default_rng(5)
    frame = _outcomes(rng.exponential(10, 20), rng.exponential(10, 20))
    a, b = compare_operations(frame, seed=7), compare_operations(frame, seed=7)
    pd.testing.assert_frame_equal(a, b)
    c = compare_operations(frame, seed=8)
    assert a.loc[0, "ci_low"] != c.loc[0, "ci_low"]


def test_strata_with_too_few_operations_get_no_interval() -> None:
    rng = np.random.default_rng(6)
    joint, single = rng.exponential(10, 12), rng.exponential(10, 12)
    drugs = ["heroin"] * 10 + ["ketamine"] * 2 + ["heroin"] * 10 + ["ketamine"] * 2
    result = compare_operations(_outcomes(joint, single, drug=drugs), by="drug")
    assert result["stratum"].tolist()[:3] == ["all"] * 3
    rows = result[result["measure"] == "kg"].set_index("stratum")
    assert rows.loc["heroin", "joint_n"] == 10 and not np.isnan(rows.loc["heroin", "ci_low"])
    assert np.isnan(rows.loc["ketamine", "ci_low"]) and "too few" in rows.loc["ketamine", "note"]
    assert rows.loc["ketamine", "joint_mean"] == pytest.approx(joint[10:].mean())
    assert "drug" in result.columns and rows.loc["heroin", "drug"] == "heroin"
    two = compare_operations(_outcomes(joint, single, drug=drugs, province="KH-12"), by=("drug", "province"))
    assert "heroin / KH-12" in set(two["stratum"])


def test_bad_arguments_are_refused() -> None:
    frame = _outcomes(np.ones(5), np.ones(5))
    with pytest.raises(InvalidInput):
        compare_operations(frame, by="weather")
    with pytest.raises(InvalidInput):
        compare_operations(frame, by="drug")  # no drug column
    with pytest.raises(InvalidInput):
        compare_operations(frame, n_boot=10)
    with pytest.raises(InvalidInput):
        operation_outcomes(SEIZURES.drop(columns="mass_kg"), ARRESTS, OPERATIONS)


def test_operations_on_the_demo_store(demo_store: Engine) -> None:
    with demo_store.connect() as conn:
        seizures, arrests = tables.seizures(conn), tables.arrests(conn)
        operations = tables.operations(conn)
    out = operation_outcomes(seizures, arrests, operations)
    assert len(out) == len(operations) > 0
    assert set(out["kind"]) == {"single_agency", "national_joint", "bilateral", "multilateral"}
    assert (out["joint"] == (out["kind"] != "single_agency")).all()
    assert out["kg"].sum() == pytest.approx(seizures.loc[seizures["operation_id"].notna(), "mass_kg"].sum())
    reached = out.dropna(subset=["network_share"])
    assert ((reached["network_share"] > 0) & (reached["network_share"] <= 1)).all()
    result = compare_operations(out, by="drug")
    overall = result[result["stratum"] == "all"]
    assert overall["measure"].tolist() == ["kg", "persons", "network_share"]
    assert (overall["joint_n"] > 0).all() and (overall["single_n"] > 0).all()
    assert overall["ci_low"].notna().all() and (overall["ci_low"] <= overall["ci_high"]).all()
    assert "not cause" in result.attrs["method"]
