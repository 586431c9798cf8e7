"""A temporary database round trip: `temporary_database()` against raw psycopg.

Each sample creates a database, connects to it, runs ``SELECT 1`` and drops it.

Baseline (same run, same throwaway cluster): psycopg 3 by hand, one autocommit
maintenance connection for ``CREATE DATABASE`` and ``DROP DATABASE`` and one
connection to the new database.  Ours: ``with temporary_database(url) as
engine`` plus ``engine.connect()`` / ``SELECT 1``.

    uv run python bench/bench_tempdb.py [--repeat N]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy import make_url, text

sys.path.insert(0, str(Path(__file__).parent))
from _common import measure, print_table

from macrostrat.database.admin import temporary_database
from macrostrat.dinosaur.cluster import database_cluster

_counter = itertools.count()


def _name() -> str:
    return f"bench_tempdb_{next(_counter)}"


def raw_psycopg(url: str) -> None:
    """CREATE DATABASE / connect / SELECT 1 / DROP DATABASE with psycopg alone."""
    parsed = make_url(url)
    kwargs = parsed.translate_connect_args(username="user", database="dbname")
    name = _name()
    ident = sql.Identifier(name)
    with psycopg.connect(**{**kwargs, "dbname": "postgres"}, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} ENCODING 'utf8'").format(ident))
        with psycopg.connect(**{**kwargs, "dbname": name}) as conn:
            conn.execute("SELECT 1").fetchone()
        admin.execute(sql.SQL("DROP DATABASE {}").format(ident))


def ours(url: str) -> None:
    """The same with `temporary_database` and its engine."""
    with (
        temporary_database(make_url(url).set(database=_name())) as engine,
        engine.connect() as conn,
    ):
        conn.execute(text("SELECT 1")).scalar()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with database_cluster(backend="local", optimize_for_testing=True) as db:
        url = db.engine.url.render_as_string(hide_password=False)
        db.cleanup()
        for _ in range(3):  # warm up imports, caches and the server
            raw_psycopg(url)
            ours(url)
        # Interleave the two so that drift in the server affects both alike.
        raw_times: list[float] = []
        our_times: list[float] = []
        for _ in range(args.repeat):
            raw_times += measure(lambda: raw_psycopg(url), 1)
            our_times += measure(lambda: ours(url), 1)
        rows = [
            ("raw psycopg: create + connect + drop", raw_times),
            ("temporary_database(): create + connect + drop", our_times),
        ]
        print_table(
            f"Temporary database round trip, N={args.repeat} (target <= 1.2x)",
            rows,
            rows[0][0],
        )


if __name__ == "__main__":
    main()
