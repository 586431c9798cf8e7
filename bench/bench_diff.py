"""Schema diff of two 200-table databases: dinosaur against ``results.dbdiff`` directly.

The pair: 200 tables of five columns; the target adds 20 columns, 2 tables and
1 index.  Both sides run in the same process against the same local cluster.

Diff.  Baseline: ``results.dbdiff.Migration`` on two psycopg cursors plus
``add_all_changes()``.  Ours: `create_migration(live, target_db)`, which also
opens and closes its own connections and classifies every statement's hazards
(target: within 1.1x).

Apply + convergence.  Baseline: the baseline diff's statements run in one
transaction on a fresh copy of the live database, then a second baseline diff.
Ours: `AutoMigration.apply(check_convergence=True)` on a fresh copy.

    uv run python bench/bench_diff.py [--repeat N]
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

import psycopg
from psycopg import sql
from results.dbdiff import Migration
from results.schemainspect import PostgreSQL

sys.path.insert(0, str(Path(__file__).parent))
from _common import measure_interleaved, print_table

from macrostrat.dinosaur import create_migration
from macrostrat.dinosaur.cluster import database_cluster
from macrostrat.dinosaur.diff import conninfo

TABLES = 200


def schema(target: bool) -> str:
    parts = []
    for i in range(TABLES):
        extra = ", note text" if target and i < 20 else ""
        parts.append(
            f"CREATE TABLE t{i} (id serial PRIMARY KEY, name text NOT NULL, "
            f"depth numeric, created timestamptz DEFAULT now(), flag boolean{extra});"
        )
    if target:
        parts.append("CREATE TABLE new_a (id serial PRIMARY KEY, label text);")
        parts.append(
            "CREATE TABLE new_b (id serial PRIMARY KEY, a_id int REFERENCES new_a);"
        )
        parts.append("CREATE INDEX t0_name_idx ON t0 (name);")
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with database_cluster(backend="local", optimize_for_testing=True) as cluster:
        base = cluster.engine.url
        cluster.cleanup()
        admin = psycopg.connect(conninfo(base), autocommit=True)
        for name, is_target in (("bench_live", False), ("bench_target", True)):
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            with psycopg.connect(
                conninfo(base.set(database=name)), autocommit=True
            ) as c:
                c.execute(schema(is_target))  # type: ignore[arg-type]
        live = base.set(database="bench_live")
        target = base.set(database="bench_target")

        def baseline_diff() -> Migration:
            with (
                psycopg.connect(conninfo(live)) as a,
                psycopg.connect(conninfo(target)) as b,
                a.cursor() as ca,
                b.cursor() as cb,
            ):
                m = Migration(PostgreSQL(ca), PostgreSQL(cb))
                m.set_safety(False)
                m.add_all_changes()
                return m

        def ours_diff() -> object:
            m = create_migration(live, target)
            assert m.is_safe
            return m.plan

        expected = len(baseline_diff().statements)
        assert len(create_migration(live, target).statements) == expected

        rows = measure_interleaved(
            [
                ("results.dbdiff.Migration (direct)", baseline_diff),
                ("dinosaur create_migration + hazards", ours_diff),
            ],
            args.repeat,
        )
        print(f"{expected} statements per diff")
        print_table(
            "Diff of two 200-table databases (target <= 1.1x)", rows, rows[0][0]
        )

        def fresh_copy() -> object:
            name = f"bench_copy_{secrets.token_hex(4)}"
            admin.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE bench_live").format(
                    sql.Identifier(name)
                )
            )
            return base.set(database=name)

        def drop(url: object) -> None:
            admin.execute(
                sql.SQL("DROP DATABASE {} WITH (FORCE)").format(
                    sql.Identifier(url.database)  # type: ignore[attr-defined]
                )
            )

        def baseline_apply() -> None:
            copy = fresh_copy()
            try:
                with (
                    psycopg.connect(conninfo(copy)) as a,
                    psycopg.connect(conninfo(target)) as b,
                ):
                    with a.cursor() as ca, b.cursor() as cb:
                        m = Migration(PostgreSQL(ca), PostgreSQL(cb))
                        m.add_all_changes()
                    a.rollback()
                    with a.transaction():
                        for s in m.statements:
                            a.execute(s)
                    with a.cursor() as ca, b.cursor() as cb:
                        again = Migration(PostgreSQL(ca), PostgreSQL(cb))
                        again.add_all_changes()
                    assert not again.statements
            finally:
                drop(copy)

        def ours_apply() -> None:
            copy = fresh_copy()
            try:
                create_migration(copy, target).apply(check_convergence=True)
            finally:
                drop(copy)

        rows = measure_interleaved(
            [
                ("results: diff + apply + re-diff", baseline_apply),
                ("dinosaur: diff + apply + convergence", ours_apply),
            ],
            args.repeat,
        )
        print_table("Diff, apply and convergence check (report)", rows, rows[0][0])
        admin.close()


if __name__ == "__main__":
    main()
