"""Benchmark `macrostrat.database._sql.split_statements` against `sqlparse.split`.

Builds about 10 MB of realistic mixed PostgreSQL (INSERTs with quoted strings,
DDL with comments and dollar-quoted function bodies, BEGIN ATOMIC functions,
COPY … FROM stdin blocks as written by pg_dump), times our splitter (best of 3)
and, when sqlparse is importable, ``sqlparse.split`` on the same text.  sqlparse
is far too slow for 10 MB, so it is timed once on a 1 MB slice cut at a statement
boundary, and that time is scaled linearly; the output says so.  sqlparse is not a project dependency::

    uv run --with sqlparse python bench/bench_split.py [--mb 10] [--sqlparse-mb 1]

Prints one table and, last, one JSON line with the figures.
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import time
from collections.abc import Callable
from typing import Any

from macrostrat.database._sql import Statement, split_statements

_WORDS = (
    "sandstone",
    "shale",
    "limestone",
    "dolomite",
    "conglomerate",
    "basalt",
    "granite",
    "tuff",
    "chert",
    "siltstone",
    "marl",
    "evaporite",
    "gneiss",
    "schist",
    "quartzite",
)


def _insert(rng: random.Random, i: int) -> str:
    """One INSERT with quoted strings, a doubled quote, a ';' in a string and an array."""
    name = " ".join(rng.choices(_WORDS, k=3))
    descr = f"{name.title()} of the {rng.choice(_WORDS)} group; it''s {i % 97} m thick"
    return (
        f"INSERT INTO macrostrat.units (id, strat_name, descrip, liths, max_thick)\n"
        f"VALUES ({i}, '{name}', '{descr}', ARRAY['{rng.choice(_WORDS)}', "
        f"'{rng.choice(_WORDS)}'], {rng.random() * 100:.2f});\n"
    )


def _multirow_insert(rng: random.Random, i: int) -> str:
    """A multi-row INSERT, as pg_dump --inserts --rows-per-insert writes."""
    rows = ",\n\t".join(
        f"({i + k}, '{rng.choice(_WORDS)}', E'line\\none', NULL, {k}.5)"
        for k in range(20)
    )
    return f"INSERT INTO public.samples VALUES\n\t{rows};\n"


def _ddl(rng: random.Random, i: int) -> str:
    """DDL: a commented table, a PL/pgSQL function, a BEGIN ATOMIC function, an index."""
    return f"""
--
-- Name: section_{i}; Type: TABLE; Schema: macrostrat; Owner: -
--

CREATE TABLE macrostrat.section_{i} (
    id integer NOT NULL, /* surrogate key; see /* nested */ note */
    "Name; with semicolon" text DEFAULT 'unknown'::text,
    geom public.geometry(MultiPolygon, 4326),
    CONSTRAINT section_{i}_check CHECK ((id > 0))
);

COMMENT ON TABLE macrostrat.section_{i} IS 'Sections; imported {i}';

CREATE OR REPLACE FUNCTION macrostrat.touch_{i}() RETURNS trigger
    LANGUAGE plpgsql
    AS $_$
BEGIN
  NEW.updated := now();  -- a ';' inside the body
  RAISE NOTICE 'touched %; $$ is not the end', NEW.id;
  RETURN NEW;
END;
$_$;

CREATE FUNCTION macrostrat.thick_{i}(a numeric) RETURNS text
    LANGUAGE sql IMMUTABLE
    BEGIN ATOMIC
        SELECT CASE WHEN a > {rng.randint(1, 99)} THEN 'thick' ELSE 'thin' END;
    END;

CREATE INDEX section_{i}_geom_idx ON macrostrat.section_{i} USING gist (geom);
"""


def _copy(rng: random.Random, i: int) -> str:
    """A pg_dump COPY block with 200 tab-separated rows."""
    rows = "".join(
        f"{i * 1000 + k}\t{rng.choice(_WORDS)}; {rng.choice(_WORDS)}\t'{k}'\t\\N\n"
        for k in range(200)
    )
    return (
        f"\n--\n-- Data for Name: lith_{i}; Type: TABLE DATA\n--\n\n"
        f"COPY macrostrat.lith_{i} (id, name, note, extra) FROM stdin;\n{rows}\\.\n\n"
    )


def build_sql(megabytes: float, seed: int = 1) -> str:
    """Return about ``megabytes`` MB of mixed SQL in a pg_dump-like layout."""
    rng = random.Random(seed)
    target = int(megabytes * 1_000_000)
    parts = ["\\restrict Zx9Kq\n\nSET statement_timeout = 0;\n"]
    size = len(parts[0])
    i = 0
    makers: tuple[Callable[[random.Random, int], str], ...] = (
        _insert,
        _insert,
        _insert,
        _insert,
        _multirow_insert,
        _ddl,
        _copy,
    )
    while size < target:
        chunk = makers[i % len(makers)](rng, i)
        parts.append(chunk)
        size += len(chunk)
        i += 1
    parts.append("\\unrestrict Zx9Kq\n")
    return "".join(parts)


def _best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Return (best wall time in seconds, last result) over ``repeat`` runs."""
    best = float("inf")
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def _slice_at_boundary(sql: str, stmts: list[Statement], megabytes: float) -> str:
    """Return the prefix of ``sql`` before the first statement past ``megabytes`` MB."""
    target = int(megabytes * 1_000_000)
    cut = next((s.start for s in stmts if s.start >= target), len(sql))
    return sql[:cut]


def main() -> None:
    """Run the benchmark and print the table and a JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=10.0, help="size of the SQL text")
    parser.add_argument(
        "--sqlparse-mb", type=float, default=1.0, help="slice size timed with sqlparse"
    )
    args = parser.parse_args()

    sql = build_sql(args.mb)
    ours_s, stmts = _best_of(lambda: split_statements(sql, origin="bench.sql"), 3)
    mb = len(sql.encode()) / 1e6
    kinds = {
        k: sum(1 for s in stmts if s.kind == k) for k in ("sql", "copy_in", "meta")
    }
    record: dict[str, Any] = {
        "mb": round(mb, 2),
        "statements": len(stmts),
        "kinds": kinds,
        "ours_s": round(ours_s, 4),
        "ours_mb_per_s": round(mb / ours_s, 1),
    }
    rows = [("macrostrat split_statements", f"{mb:.2f} MB", ours_s, ours_s)]

    try:
        sqlparse = importlib.import_module("sqlparse")
    except ImportError:
        print("sqlparse not installed")
        sqlparse = None
    if sqlparse is not None:
        part = _slice_at_boundary(sql, stmts, min(args.sqlparse_mb, args.mb))
        part_mb = len(part.encode()) / 1e6
        theirs_s, theirs = _best_of(lambda: sqlparse.split(part), 1)
        scaled = theirs_s * mb / part_mb
        ours_part_s, ours_part = _best_of(lambda: split_statements(part), 3)
        rows.append(
            (
                f"sqlparse {sqlparse.__version__} split",
                f"{part_mb:.2f} MB",
                theirs_s,
                scaled,
            )
        )
        record.update(
            sqlparse_version=sqlparse.__version__,
            sqlparse_slice_mb=round(part_mb, 2),
            sqlparse_slice_s=round(theirs_s, 3),
            sqlparse_scaled_s=round(scaled, 2),
            ours_slice_s=round(ours_part_s, 4),
            speedup_same_slice=round(theirs_s / ours_part_s, 1),
            speedup_scaled=round(scaled / ours_s, 1),
            slice_statements_ours=len(ours_part),
            slice_statements_sqlparse=len(theirs),
        )

    print(
        f"{'splitter':<30} {'input':>9} {'time (s)':>10} {f'per {mb:.1f} MB (s)':>16}"
    )
    for name, size, t, per in rows:
        print(f"{name:<30} {size:>9} {t:>10.3f} {per:>16.3f}")
    if sqlparse is not None:
        print(
            f"sqlparse was timed on a {record['sqlparse_slice_mb']} MB slice and scaled "
            f"linearly to {mb:.1f} MB (its real 10 MB time was not measured)."
        )
        print(
            f"speed-up: {record['speedup_same_slice']}x on the same slice, "
            f"{record['speedup_scaled']}x against the scaled figure"
        )
        print(
            f"statements in the slice: ours {len(ours_part)}, sqlparse {len(theirs)} "
            "(sqlparse also splits COPY data rows and BEGIN ATOMIC bodies)"
        )
    print(
        f"statements: {len(stmts)} {kinds}; ours {record['ours_mb_per_s']} MB/s "
        f"({'under' if ours_s < 1 else 'OVER'} 1 s for {mb:.1f} MB)"
    )
    print(json.dumps(record))


if __name__ == "__main__":
    main()
