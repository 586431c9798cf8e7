"""The cost of knowing what became of a COMMIT: short transactions, in the same run.

Every commit on an engine made by `macrostrat.database.create_engine` first
reads the transaction's id (``pg_current_xact_id_if_assigned()``), so that a
connection lost during ``COMMIT`` can be resolved with the server. This prints
N one-row INSERT transactions, each committed, through:

* ``raw psycopg``: one connection, ``execute`` + ``commit`` per row (the floor);
* ``raw SQLAlchemy``: SQLAlchemy's own ``create_engine``, ``with conn.begin()``;
* ``ours: engine.begin()``: our engine (the id read before each commit);
* ``ours: db.transaction()``: the `Database` scope (session, savepoint rules).

The cluster is a throwaway one with ``fsync=off`` (the testing settings), so
the figures are the client's and the wire's, not the disk's: the relative cost
of the extra round trip is at its largest here.

    uv run python bench/bench_commit.py [--transactions 2000] [--repeat 3]
"""

from __future__ import annotations

import argparse

import psycopg
from _common import measure_interleaved, print_table
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy import text

from macrostrat.database import Database, create_engine
from macrostrat.dinosaur.cluster import database_cluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n = args.transactions
    insert = "INSERT INTO t (v) VALUES (1)"
    with database_cluster(backend="local", optimize_for_testing=True) as cluster:
        url = cluster.engine.url.render_as_string(hide_password=False)
        plain = url.replace("postgresql+psycopg://", "postgresql://")
        raw = psycopg.connect(plain)
        raw.execute("CREATE TABLE t (id serial PRIMARY KEY, v int)")
        raw.commit()
        sa_engine = sa_create_engine(url)
        ours = create_engine(url)
        db = Database(url)

        def raw_psycopg() -> None:
            for _ in range(n):
                raw.execute(insert)
                raw.commit()

        def raw_sqlalchemy() -> None:
            with sa_engine.connect() as conn:
                for _ in range(n):
                    with conn.begin():
                        conn.execute(text(insert))

        def ours_engine() -> None:
            with ours.connect() as conn:
                for _ in range(n):
                    with conn.begin():
                        conn.execute(text(insert))

        def ours_database() -> None:
            for _ in range(n):
                with db.transaction():
                    db.session.execute(text(insert))

        rows = measure_interleaved(
            [
                ("raw psycopg (execute + commit)", raw_psycopg),
                ("raw SQLAlchemy (conn.begin())", raw_sqlalchemy),
                ("ours: engine conn.begin() (id read)", ours_engine),
                ("ours: db.transaction()", ours_database),
            ],
            args.repeat,
        )
        print_table(
            f"{n} one-row INSERT transactions, each committed",
            rows,
            "raw SQLAlchemy (conn.begin())",
        )
        raw.close()
        sa_engine.dispose()
        ours.dispose()
        db.engine.dispose()


if __name__ == "__main__":
    main()
