"""Reading UNODC IDS files into seizure tables: a tiny file written here with a hand-known mapping, and the
real 208k-row file checked against the store the importer built from it."""

from __future__ import annotations

import gzip
import math
import time
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, text

from narcotrack.analytics import routes, sources
from narcotrack.analytics.tables import COLUMNS
from narcotrack.errors import InvalidInput
from tests.analytics.conftest import IDS_FILE
from tests.conftest import shared_data

HEADER = (
    "REGION;SUBREGION;COUNTRY;ADMINISTRATIVE_DIVISION;PLACE;SEIZURE_DATE;DRUG_NAME;AMOUNT;DRUG_UNIT;"
    "HIDING_PLACE;INSTALLATION;TRANSPORT;PRODUCING_COUNTRY;DEPARTURE_COUNTRY;DESTINATION_COUNTRY;ROUTING"
)
ROWS = [
    # line 2: Thai border seizure of tablets coming from Laos
    "Asia;South-East Asia;Thailand;Nong Khai;Border post;2013-05-02;Methamphetamine tablets;10000;Tablet;"
    "Baggage;Frontier;Commercial road;Myanmar;Lao People's Democratic Republic;Thailand;Border - inbound",
    # line 3: Cambodia, Phnom Penh airport, heroin in grams, departure unknown
    "Asia;South-East Asia;Cambodia;Phnom Penh;Phnom Penh;2012-11-30;Heroin;1,250.5;Gram;;Airport;"
    "Commercial air;Unknown;Unknown;Australia;Border - outbound",
    # line 4: no seizing country: rejected
    "Asia;South-East Asia;;;;2012-01-01;Heroin;1;Kilogram;;;;;;;",
    # line 5: negative amount: rejected
    "Asia;South-East Asia;Viet Nam;;;2012-01-01;Heroin;-3;Kilogram;;;;;;;",
    # line 6: an unknown drug and unit, an unrecognised departure country, padded cells
    "Europe;West;  France ;;Paris;2014-02-03; Zzz powder ;2;Boxes;;;;;Narnia;Belgium;",
    # line 7: a date that is not a date: rejected
    "Europe;West;France;;Paris;2014-13-45;Cocaine;2;Kilogram;;;;;;;",
    # line 8: litres of liquid, dd/mm/yyyy date
    "Europe;West;Netherlands;;Rotterdam;05/06/2013;Cocaine;3;Litre;;Seaport;;Colombia;Colombia;Netherlands;Other",
]


def write(path: Path, rows: list[str]) -> Path:
    data = "\n".join([HEADER, *rows]) + "\n"
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


def test_tiny_ids_file_maps_like_the_importer(tmp_path: Path) -> None:
    df = sources.ids_seizures(write(tmp_path / "ids.csv", ROWS))
    assert list(df.columns) == list(COLUMNS["seizures"])
    assert df["incident_id"].tolist() == ["ids:2", "ids:3", "ids:6", "ids:8"]
    assert df.attrs["rows_read"] == 7 and df.attrs["rejected"] == 3
    th, kh, fr, nl = (df.iloc[i] for i in range(4))
    assert (th.country, th.place_code, th.place_kind, th.drug, th.unit, th.quantity) == (
        "TH", "TH", "border_checkpoint", "methamphetamine_tablets", "tablet", 10000.0)
    assert math.isclose(th.mass_kg, 10000 * 0.00009)  # 90 mg a tablet (vocab/units.yaml)
    assert (th.producing_country, th.origin_country, th.destination_country, th.routing) == (
        "MM", "LA", "TH", "border_inbound")
    assert (th.transport_mode, th.concealment, th.transit_countries) == ("road_commercial", "baggage", "")
    assert (th.reporting_org, th.source, th.operation_id) == ("UNODC-IDS", "unodc_ids", None)
    assert th.occurred_on == pd.Timestamp("2013-05-02")
    assert (kh.country, kh.province_code, kh.place_code, kh.place_kind) == ("KH", "KH-12", "KH-12", "airport")
    assert kh.quantity == 1250.5 and math.isclose(kh.mass_kg, 1.2505)
    assert kh.producing_country is None and kh.origin_country is None  # 'Unknown' is missing
    assert (kh.destination_country, kh.routing) == ("AU", "border_outbound")
    assert (fr.country, fr.drug, fr.unit, fr.origin_country, fr.destination_country) == (
        "FR", "other", "other", None, "BE")
    assert pd.isna(fr.mass_kg)  # no factor for an unknown unit
    assert nl.occurred_on == pd.Timestamp("2013-06-05") and nl.mass_kg == 3.0 and nl.place_kind == "seaport"


def test_gzip_and_plain_files_read_the_same(tmp_path: Path) -> None:
    plain = sources.ids_seizures(write(tmp_path / "ids.csv", ROWS))
    packed = sources.ids_seizures(write(tmp_path / "ids.csv.gz", ROWS))
    pd.testing.assert_frame_equal(plain, packed)


def test_the_tiny_file_routes(tmp_path: Path) -> None:
    df = sources.ids_seizures(write(tmp_path / "ids.csv", ROWS))
    edges = {(r.source, r.target): r.seizures for r in routes.flows(df).itertuples()}
    # TH: seized in its destination; KH: at an airport of Phnom Penh (the province is the crossing) to AU;
    # FR: seized in transit to BE; NL: CO produced and departed
    assert edges == {("MM", "LA"): 1, ("LA", "TH"): 1, ("KH-12", "AU"): 1, ("FR", "BE"): 1, ("CO", "NL"): 1}


def test_bad_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such file"):
        sources.ids_seizures(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("COUNTRY;AMOUNT\nThailand;1\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="SEIZURE_DATE"):
        sources.ids_seizures(bad)


def test_real_ids_file() -> None:
    path = shared_data(*IDS_FILE)
    t0 = time.perf_counter()
    df = sources.ids_seizures(path)
    elapsed = time.perf_counter() - t0
    assert len(df) == 208_172 and df.attrs["rejected"] == 0
    assert df["country"].notna().all() and df["country"].nunique() == 95
    assert set(df["occurred_on"].dt.year.dropna().astype(int)) <= {2011, 2012, 2013, 2014}
    assert elapsed < 10, f"reading took {elapsed:.1f} s"
    assert "Unknown" not in set(df["origin_country"].dropna())


@pytest.fixture(scope="module")
def ids_frame() -> pd.DataFrame:
    return sources.ids_seizures(shared_data(*IDS_FILE))


def test_routes_on_the_real_file(ids_frame: pd.DataFrame) -> None:
    t0 = time.perf_counter()
    edges = routes.flows(ids_frame)
    top = routes.corridors(ids_frame)
    routes.crossings(ids_frame)
    shifts = routes.route_shifts(ids_frame, before=routes.period_bounds(2012), after=routes.period_bounds(2013))
    elapsed = time.perf_counter() - t0
    assert elapsed < 5, f"flows + corridors + crossings + shifts took {elapsed:.1f} s"
    # every place on the map has a point (French overseas departments included)
    assert set(edges["source"]) | set(edges["target"]) <= set(routes.node_coordinates(areas=False)["code"])
    # a known route of the period: Afghan opiates through Pakistan
    assert top.set_index("corridor").loc["AF → PK", "seizures"] > 500
    n2012 = (ids_frame["occurred_on"].dt.year == 2012).sum()
    assert shifts.attrs["exposure_before"] == n2012 == 29_396


@pytest.mark.parametrize("country", ["CO", "TH", "KH", "MM", "MU", "AF"])
def test_real_ids_file_matches_the_imported_store(ids_store: Engine, ids_frame: pd.DataFrame, country: str) -> None:
    mine = ids_frame[ids_frame["country"] == country]
    with ids_store.connect() as conn:
        n, kg, with_origin, with_dest = conn.execute(text(
            "SELECT count(*), sum(s.mass_kg), count(s.origin_country), count(s.destination_country) "
            "FROM seizure s JOIN incident i ON i.id = s.incident_id WHERE i.country = :c"), {"c": country}).one()
        drugs: dict[str, int] = dict(conn.execute(text(
            "SELECT s.drug, count(*) FROM seizure s JOIN incident i ON i.id = s.incident_id WHERE i.country = :c "
            "GROUP BY s.drug"), {"c": country}).all())
    assert len(mine) == n > 0
    assert mine["origin_country"].notna().sum() == with_origin
    assert mine["destination_country"].notna().sum() == with_dest
    assert mine["drug"].value_counts().to_dict() == drugs
    assert math.isclose(mine["mass_kg"].sum(), kg or 0.0, rel_tol=1e-9)
