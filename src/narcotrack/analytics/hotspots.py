"""Hotspots: where seizures cluster more than chance would place them, province by province or by district.

A map of counts shows where things happen; it does not say whether a group of neighbouring areas stands
out more than a random shuffle of the same counts would. The Getis-Ord Gi* statistic does: for each area
it compares the total of the area and its neighbours with what the same values, placed at random, would
give (conditional permutations, esda). Testing 25 or 210 areas at once would flag some by chance, so the
p-values are adjusted for the false-discovery rate (Benjamini-Hochberg) and only areas with q ≤ fdr are
called hot or cold. Neighbours are the touching province outlines, or the k nearest district points
(``geo``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from esda import G_Local
from libpysal.weights import W
from scipy.stats import false_discovery_control, norm

from narcotrack.analytics import geo
from narcotrack.errors import InvalidInput

LEVELS = ("province", "district")
MEASURES = ("incidents", "seizures", "persons_arrested", "kg", "street_value_usd")
HOTSPOT_COLUMNS = ("code", "name_en", "value", "gi_z", "p_value", "q_value", "cluster")
_CODE_COLUMN = {"province": "province_code", "district": "district_code"}


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise InvalidInput(f"level must be one of {', '.join(LEVELS)}, not {level!r}")


def area_values(frame: pd.DataFrame, *, level: str = "province", measure: str = "seizures") -> pd.DataFrame:
    """One value per area of the level (code, value), every area present, zero where nothing was recorded.

    ``frame`` is a seizures frame (``tables.seizures``: measure "seizures" counts rows, "incidents"
    distinct incidents, "kg" sums mass_kg), an arrests frame ("persons_arrested" counts rows), or a
    trend-shaped frame with a ``province``/``district`` column and a column named ``measure`` (summed over
    periods and other dimensions). Rows outside Cambodia or without a code of the level are left out;
    ``.attrs["unplaced"]`` says how many.
    """
    _check_level(level)
    if measure not in MEASURES:
        raise InvalidInput(f"measure must be one of {', '.join(MEASURES)}, not {measure!r}")
    areas = geo.area_names(level)["code"]
    raw_col = _CODE_COLUMN[level]
    if level in frame.columns and measure in frame.columns:
        codes, values = frame[level], pd.to_numeric(frame[measure], errors="coerce").fillna(0.0)
    elif raw_col in frame.columns:
        codes = frame[raw_col]
        if measure in ("seizures", "persons_arrested"):
            values = pd.Series(1.0, index=frame.index)
        elif measure == "incidents" and "incident_id" in frame.columns:
            first = ~frame.duplicated(subset=["incident_id"])
            values = first.astype(float)
        elif measure == "kg" and "mass_kg" in frame.columns:
            values = pd.to_numeric(frame["mass_kg"], errors="coerce").fillna(0.0)
        else:
            raise InvalidInput(f"cannot compute {measure!r} from a frame with columns {list(frame.columns)}")
    else:
        raise InvalidInput(f"the frame needs a {level!r} column with {measure!r}, or a {raw_col!r} column")
    known = codes.isin(set(areas))
    totals = values[known].groupby(codes[known]).sum()
    out = pd.DataFrame({"code": areas, "value": areas.map(totals).fillna(0.0).astype(float)})
    out.attrs["unplaced"] = int((~known).sum())
    out.attrs["measure"] = measure
    out.attrs["level"] = level
    return out


INFERENCES = ("permutation", "normal")
DEFAULT_PERMUTATIONS = {"province": 999, "district": 9999}


def _method(level: str, k: int | None, permutations: int, fdr: float, inference: str) -> str:
    if level == "province":
        nb = "queen contiguity of province outlines (geoBoundaries, ODbL)"
    elif k is None:
        nb = "caller-supplied neighbours"
    else:
        nb = f"the {k} nearest district points (GeoNames towns, else the province centroid)"
    test = (f"{permutations} permutations" if inference == "permutation"
            else "normal approximation of the z-score (assumes roughly normal values; too many flags with skewed values)")
    return (
        f"Getis-Ord Gi* with {nb}, {test}, Benjamini–Hochberg FDR q ≤ {fdr:g}. Two-sided p-values; "
        "hot/cold says a cluster of high/low values stands out from a random placement of the same values, "
        "not why."
    )


def _permutation_p(g: G_Local, permutations: int) -> np.ndarray:
    """Two-sided pseudo p-value from esda's conditional permutations, ties counted in both tails.

    esda's own ``p_sim`` counts ties only in the upper tail, so an area whose few neighbours hold the
    smallest values gets p = 0.001 although a quarter of the shuffles tie with it; counting ties in both
    tails keeps the test valid for counts (many ties) and small neighbourhoods.
    """
    sims = np.asarray(g.rGs, dtype=float)
    obs = np.asarray(g.Gs, dtype=float)[:, None]
    eps = 1e-9 * np.maximum(np.abs(obs), 1e-12)
    upper = (sims >= obs - eps).sum(axis=1)
    lower = (sims <= obs + eps).sum(axis=1)
    result: np.ndarray = np.minimum(1.0, 2.0 * (np.minimum(upper, lower) + 1.0) / (permutations + 1.0))
    return result


def hotspots(values: pd.DataFrame, *, level: str = "province", fdr: float = 0.05, permutations: int | None = None,
             seed: int = 0, k: int = 5, weights: W | None = None, inference: str = "permutation") -> pd.DataFrame:
    """Getis-Ord Gi* hot and cold spots: code, name_en, value, gi_z, p_value, q_value, cluster.

    ``values`` has columns code and value (``area_values``); areas of the level missing from it count as
    0, codes that are not areas of the level are an error. Values must be non-negative (counts, kg).
    ``gi_z`` is the Gi* z-score (binary weights, the area itself included; positive: the area and its
    neighbours hold more than their share). ``p_value`` is two-sided: by default from ``permutations``
    conditional permutations (esda, seeded; default 999 for provinces, 9999 for districts: with 210
    areas and 999 permutations the smallest p-value, 0.002, passes the FDR step only when nine or more
    areas do), with ``inference="normal"`` from the normal approximation
    of gi_z. ``q_value`` is the Benjamini-Hochberg adjusted p-value over all areas; ``cluster`` is
    "hot"/"cold" (sign of gi_z) where q_value ≤ fdr, else "none". ``weights`` replaces the level's
    neighbours (a libpysal W whose ids are the area codes).
    """
    _check_level(level)
    if permutations is None:
        permutations = DEFAULT_PERMUTATIONS[level]
    if inference not in INFERENCES:
        raise InvalidInput(f"inference must be one of {', '.join(INFERENCES)}, not {inference!r}")
    if not 0 < fdr < 1:
        raise InvalidInput(f"fdr must be between 0 and 1, not {fdr}")
    if inference == "permutation" and permutations < 99:
        raise InvalidInput(f"permutations must be at least 99, not {permutations}")
    if not {"code", "value"} <= set(values.columns):
        raise InvalidInput("values need the columns 'code' and 'value'")
    if values["code"].duplicated().any():
        raise InvalidInput("values list an area twice")
    w = weights if weights is not None else geo.weights(level, k=k)
    ids = list(w.id_order)
    unknown = sorted(set(values["code"]) - set(ids))
    if unknown:
        raise InvalidInput(f"not {level} codes: {', '.join(map(str, unknown[:5]))}")
    y = pd.to_numeric(values.set_index("code")["value"], errors="coerce").reindex(ids).fillna(0.0)
    if (y < 0).any():
        raise InvalidInput("Gi* needs non-negative values (counts, kg)")
    names = geo.area_names(level).set_index("code")["name_en"]
    out = pd.DataFrame({"code": ids, "name_en": [names.get(c, c) for c in ids], "value": y.to_numpy()})
    if y.nunique() < 2:
        # Nothing to compare: every area holds the same value (often all zero).
        out["gi_z"], out["p_value"], out["q_value"], out["cluster"] = np.nan, 1.0, 1.0, "none"
    else:
        perms = permutations if inference == "permutation" else 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            # esda warns that its p_sim will change; p-values here are computed from the simulations.
            warnings.simplefilter("ignore", DeprecationWarning)
            g = G_Local(y.to_numpy(dtype=float), w, transform="B", permutations=perms, star=True,
                        keep_simulations=True, n_jobs=1, seed=seed)
        z = np.asarray(g.Zs, dtype=float)
        p = _permutation_p(g, permutations) if perms else 2.0 * norm.sf(np.abs(z))
        q = false_discovery_control(p, method="bh")
        out["gi_z"], out["p_value"], out["q_value"] = z, p, q
        out["cluster"] = np.where(q <= fdr, np.where(z > 0, "hot", "cold"), "none")
    out = out.sort_values("code", ignore_index=True)
    out.attrs["method"] = _method(level, k if weights is None else None, permutations, fdr, inference)
    out.attrs["level"] = level
    return out
