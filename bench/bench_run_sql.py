"""Run a SQL file: `run_sql` against ``psql -f`` and one raw psycopg ``execute``.

Three workloads, each run into a fresh database (cloned from a prepared
template before the clock starts), interleaved and repeated on one throwaway
cluster:

1. 20,000 one-row ``INSERT`` statements (targets in issue 15: ``run_sql``
   ≤ 0.25x psql and ≤ 2x the raw execute).
2. 2,000 mixed DDL statements with comments and dollar-quoted bodies
   (``CREATE TABLE``, ``CREATE INDEX``, ``CREATE FUNCTION``, ``CREATE VIEW``,
   ``COMMENT ON``; target ≤ 0.8x psql).
3. The same DDL file run again on a database that has it: 1,600 statements
   fail with "already exists" (the worst case for batching; errors are logged,
   not printed).  The raw psycopg cases cannot do this (the first error stops
   the whole message) and are left out.

Cases (each includes connecting):

* ``psql -f``: ``psql -X -q`` from the cluster's own binaries; every statement
  is its own round trip and its own transaction.
* ``psycopg execute(whole file)``: the whole file as one simple-query message,
  one implicit transaction: the floor for sending the text, with no
  per-statement outcome and no per-statement commit at all.
* ``psycopg execute(file, a commit per statement)``: the same message with
  every statement in its own transaction, framed as `run_sql` frames it
  (``BEGIN; s1; COMMIT AND CHAIN; s2; …; COMMIT``): what the server itself
  spends to give each statement psql's own transaction.
* ``run_sql(engine, path)``: ours: split, framed, every statement's outcome.

    uv run python bench/bench_run_sql.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy import make_url

sys.path.insert(0, str(Path(__file__).parent))
from _common import measure_interleaved, print_table

from macrostrat.database import create_engine
from macrostrat.database._sql.lexer import split_statements
from macrostrat.database.query import run_sql
from macrostrat.dinosaur.cluster import database_cluster, find_postgres_binaries

_names = itertools.count()


def inserts_file(n: int = 20_000) -> str:
    """``n`` one-row INSERTs, one per line, as a dump with --inserts writes them."""
    return "".join(
        f"INSERT INTO bench_rows (id, name, value) VALUES ({i}, 'row {i}; it''s', {i * 0.5});\n"
        for i in range(n)
    )


def ddl_file(groups: int = 400) -> str:
    """``5 * groups`` DDL statements with comments and dollar-quoted bodies."""
    parts = []
    for i in range(groups):
        parts.append(
            f"""
-- Table {i}; with a comment line
CREATE TABLE bench_t{i} (
    id integer PRIMARY KEY, /* a block comment; */
    name text DEFAULT 'unknown;',
    created timestamptz DEFAULT now()
);
CREATE INDEX bench_t{i}_name ON bench_t{i} (name);
CREATE FUNCTION bench_f{i}(x integer) RETURNS integer
LANGUAGE plpgsql AS $body$
BEGIN
  -- a ; inside the body
  RETURN x + {i};
END;
$body$;
CREATE VIEW bench_v{i} AS SELECT id, bench_f{i}(id) AS shifted FROM bench_t{i};
COMMENT ON TABLE bench_t{i} IS 'table {i}; see bench_v{i}';
"""
        )
    return "".join(parts)


class Databases:
    """Fresh databases cloned from a template, handed out one per run."""

    def __init__(self, admin: psycopg.Connection, url: str, template: str) -> None:
        self.admin = admin
        self.url = make_url(url)
        self.template = template
        self.ready: list[str] = []

    def prepare(self, count: int) -> None:
        """Create ``count`` databases now, before any clock starts."""
        for _ in range(count):
            name = f"bench_run_{next(_names)}"
            self.admin.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(self.template)
                )
            )
            self.ready.append(name)

    def take(self) -> str:
        """The name of the next fresh database."""
        return self.ready.pop(0)

    def sa_url(self, name: str) -> str:
        return self.url.set(database=name).render_as_string(hide_password=False)

    def conninfo(self, name: str) -> str:
        return self.url.set(drivername="postgresql", database=name).render_as_string(
            hide_password=False
        )


def cases(
    dbs: Databases, path: Path, done: dict[str, list[str]], *, rerun: bool = False
) -> list[tuple[str, Callable[[], object]]]:
    psql = str(find_postgres_binaries().path("psql"))
    url = dbs.url
    env = {**os.environ, "PGPASSWORD": url.password or ""}
    text = path.read_text()

    def run_psql() -> None:
        name = dbs.take()
        done["psql -f"].append(name)
        cmd = [psql, "-X", "-q", "-h", str(url.host), "-p", str(url.port)]
        cmd += ["-U", str(url.username), "-d", name, "-f", str(path)]
        subprocess.run(
            cmd,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def run_raw() -> None:
        name = dbs.take()
        done["psycopg execute(whole file)"].append(name)
        with psycopg.connect(dbs.conninfo(name), autocommit=True) as conn:
            conn.execute(text)

    statements = [st.text for st in split_statements(text)]  # before any clock
    framed = "BEGIN;\n" + ";\nCOMMIT AND CHAIN;\n".join(statements) + ";\nCOMMIT"

    def run_framed() -> None:
        name = dbs.take()
        done["psycopg execute(file, a commit per statement)"].append(name)
        with psycopg.connect(dbs.conninfo(name), autocommit=True) as conn:
            conn.execute(framed)

    def run_ours() -> None:
        name = dbs.take()
        done["run_sql(engine, path)"].append(name)
        engine = create_engine(dbs.sa_url(name))
        try:
            run_sql(engine, path, raise_errors=not rerun)
        finally:
            engine.dispose()

    if rerun:
        return [("psql -f", run_psql), ("run_sql(engine, path)", run_ours)]
    return [
        ("psql -f", run_psql),
        ("psycopg execute(whole file)", run_raw),
        ("psycopg execute(file, a commit per statement)", run_framed),
        ("run_sql(engine, path)", run_ours),
    ]


def check(
    dbs: Databases, done: dict[str, list[str]], query: str, expected: int
) -> None:
    """Every run really did the work (outside the timings)."""
    for case, names in done.items():
        for name in names:
            with psycopg.connect(dbs.conninfo(name)) as conn:
                got = conn.execute(query).fetchone()
            if got is None or got[0] != expected:
                raise AssertionError(f"{case}: {name} holds {got}, not {expected}")


def bench(
    admin: psycopg.Connection,
    url: str,
    title: str,
    setup: str,
    body: str,
    check_query: str,
    expected: int,
    repeat: int,
    *,
    rerun: bool = False,
) -> list[tuple[str, list[float]]]:
    template = f"bench_template_{next(_names)}"
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(template)))
    dbs = Databases(admin, url, template)
    with psycopg.connect(dbs.conninfo(template), autocommit=True) as conn:
        conn.execute(setup)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.sql"
        path.write_text(body)
        done: dict[str, list[str]] = {
            "psql -f": [],
            "psycopg execute(whole file)": [],
            "psycopg execute(file, a commit per statement)": [],
            "run_sql(engine, path)": [],
        }
        all_cases = cases(dbs, path, done, rerun=rerun)
        dbs.prepare(len(all_cases) * repeat)
        rows = measure_interleaved(all_cases, repeat)
    check(dbs, done, check_query, expected)
    print_table(title, rows, baseline="psql -f")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    # Failed statements are logged at WARNING: keep the records, drop the output.
    quiet = logging.getLogger("macrostrat.database.query")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    with database_cluster(backend="local", optimize_for_testing=True) as cluster:
        url = cluster.engine.url.render_as_string(hide_password=False)
        cluster.cleanup()
        conninfo = (
            make_url(url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )
        with psycopg.connect(conninfo, autocommit=True) as admin:
            inserts = bench(
                admin,
                url,
                "20,000 one-row INSERTs",
                "CREATE TABLE bench_rows (id int, name text, value double precision)",
                inserts_file(),
                "SELECT count(*) FROM bench_rows",
                20_000,
                args.repeat,
            )
            ddl = bench(
                admin,
                url,
                "2,000 DDL statements (tables, indexes, functions, views, comments)",
                "SELECT 1",
                ddl_file(),
                "SELECT count(*) FROM pg_proc WHERE proname LIKE 'bench_f%'",
                400,
                args.repeat,
            )
            rerun = bench(
                admin,
                url,
                "The same 2,000 DDL statements again (1,600 fail: already exists)",
                ddl_file(),
                ddl_file(),
                "SELECT count(*) FROM pg_proc WHERE proname LIKE 'bench_f%'",
                400,
                args.repeat,
                rerun=True,
            )
    summary = {
        name: {case: statistics.median(t) for case, t in rows}
        for name, rows in (("inserts", inserts), ("ddl", ddl), ("ddl_rerun", rerun))
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
