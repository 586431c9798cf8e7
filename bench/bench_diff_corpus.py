"""Plan for the corpus's geology platform: dinosaur against ``results.dbdiff`` directly.

The live database is built from the platform's first half of files, the
target from all of them (``dinosaur/tests/fixtures/corpus/geology_platform``:
18 schemas, 152 tables and partitions), both on one local cluster.

Baseline: ``results.dbdiff.Migration`` on two psycopg cursors plus
``add_all_changes()`` (its plan does not apply on this schema).  Ours:
`create_migration(live, target)` and its hazards: ``results``' plan plus
reading both catalogs' dependencies, the statement fixes and the dependency
sort (target: under 3 s on a 2-core machine).  Each case's plan is checked to
apply in one transaction and converge once, outside the timings.

    uv run python bench/bench_diff_corpus.py [--repeat N]
"""

from __future__ import annotations

import argparse
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

CORPUS = (
    Path(__file__).parent.parent / "dinosaur/tests/fixtures/corpus/geology_platform"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    files = sorted(CORPUS.glob("[0-9][0-9]-*.sql"))

    with database_cluster(
        backend="local", optimize_for_testing=True, extensions=("postgis",)
    ) as cluster:
        base = cluster.engine.url
        cluster.cleanup()
        admin = psycopg.connect(conninfo(base), autocommit=True)
        urls = {}
        for name, count in (
            ("bench_live", len(files) // 2),
            ("bench_target", len(files)),
        ):
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            url = base.set(database=name)
            with psycopg.connect(conninfo(url), autocommit=True) as c:
                for f in files[:count]:
                    c.execute(f.read_text())  # type: ignore[arg-type]
            urls[name] = url
        live, target = urls["bench_live"], urls["bench_target"]

        def baseline_plan() -> Migration:
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

        def ours_plan() -> object:
            return create_migration(live, target).plan

        print(
            f"results: {len(baseline_plan().statements)} statements; "
            f"dinosaur: {len(create_migration(live, target).statements)} statements"
        )
        rows = measure_interleaved(
            [
                ("results.dbdiff.Migration (direct)", baseline_plan),
                ("dinosaur create_migration + hazards", ours_plan),
            ],
            args.repeat,
        )
        print_table(
            "Plan for the geology platform, half -> full (ours under 3 s)",
            rows,
            rows[0][0],
        )

        admin.execute("CREATE DATABASE bench_check TEMPLATE bench_live")
        check = base.set(database="bench_check")
        m = create_migration(check, target)
        m.apply(allow_hazards=["AUTHZ_UPDATE"], check_convergence=True)
        print("dinosaur's plan applied in one transaction and converged")
        admin.close()


if __name__ == "__main__":
    main()
