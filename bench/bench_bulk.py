"""Bulk loading: `copy_rows` against SQLAlchemy ``executemany`` and ``psql \\copy``.

Rows of (int, text, double precision, geometry(Point, 4326)) are loaded into the
same table (truncated between runs) on one throwaway cluster, in the same run:

* ``psql \\copy``: ``psql -X -c "\\copy t from file"`` from the cluster's own
  binaries, reading a COPY text file written before the clock starts.
* ``copy_rows``: ours, from a generator (row generation is inside the clock),
  run in a forked child so its peak RSS (``ru_maxrss``) is its own.
* ``copy_rows (rows pre-built in a list)``: the same, with the rows built
  before the clock starts, like psql's file: the load alone.
* ``SQLAlchemy executemany``: ``connection.execute(text(INSERT ...), rows)`` of
  100,000 rows; its 1,000,000-row figure is extrapolated (labelled so) unless
  ``--measure-executemany-1m`` times it too.

Targets: ``copy_rows`` at least 10x faster than executemany and within 1.5x of
``psql \\copy``; memory flat between 100k and 1M rows.

    uv run python bench/bench_bulk.py [--repeat 2] [--measure-executemany-1m]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from macrostrat.database.transfer import copy_rows
from macrostrat.dinosaur.cluster import database_cluster, find_postgres_binaries

TABLE_DDL = (
    "CREATE TABLE bench_points (id int, name text, value double precision, "
    "geom geometry(Point, 4326))"
)


def rows(n: int) -> Iterator[tuple[int, str, float, str]]:
    """The benchmark rows, generated lazily."""
    for i in range(n):
        yield (i, f"name {i}", i * 0.5, f"SRID=4326;POINT({i % 360 - 180} {i % 90})")


def write_copy_file(path: Path, n: int) -> None:
    """Write the same rows as a COPY text file (for ``psql \\copy``)."""
    with path.open("w") as out:
        for i, name, value, geom in rows(n):
            out.write(f"{i}\t{name}\t{value!r}\t{geom}\n")


def _child_copy(url: str, n: int, prebuilt: bool, queue: Any) -> None:
    """Run copy_rows in a child process; report seconds and peak RSS (KiB).

    With ``prebuilt`` the rows are built into a list before the clock starts
    (as psql's file is), so only the load is timed; RSS then includes the list.
    """
    engine = create_engine(url)
    data: Any = list(rows(n)) if prebuilt else rows(n)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    count = copy_rows(engine, "bench_points", data)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    engine.dispose()
    queue.put((elapsed, count, before, peak))


def run_copy_rows(url: str, n: int, prebuilt: bool = False) -> tuple[float, int, int]:
    """Time copy_rows in a forked child; return (seconds, rss before, peak rss)."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child_copy, args=(url, n, prebuilt, queue))
    proc.start()
    elapsed, count, before, peak = queue.get()
    proc.join()
    assert count == n
    return elapsed, before, peak


def run_psql(url: Any, path: Path) -> float:
    """Time ``psql \\copy`` of ``path`` into the table."""
    psql = str(find_postgres_binaries().path("psql"))
    env = {**os.environ, "PGPASSWORD": url.password or ""}
    cmd = [
        psql, "-X", "-q", "-v", "ON_ERROR_STOP=1",
        "-h", str(url.host), "-p", str(url.port), "-U", str(url.username),
        "-d", str(url.database),
        "-c", f"\\copy bench_points from '{path}'",
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True)
    return time.perf_counter() - start


def run_executemany(engine: Any, n: int) -> float:
    """Time SQLAlchemy executemany of ``n`` rows (parameters built before the clock)."""
    params = [
        {"id": i, "name": name, "value": value, "geom": geom}
        for i, name, value, geom in rows(n)
    ]
    stmt = text(
        "INSERT INTO bench_points VALUES (:id, :name, :value, ST_GeomFromEWKT(:geom))"
    )
    start = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(stmt, params)
    return time.perf_counter() - start


def count_and_truncate(engine: Any, expected: int) -> None:
    """Check the row count of the last run, then empty the table."""
    with engine.begin() as conn:
        got = conn.execute(text("SELECT count(*) FROM bench_points")).scalar_one()
        assert got == expected, (got, expected)
        conn.execute(text("TRUNCATE bench_points"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--measure-executemany-1m",
        action="store_true",
        help="time executemany on the 1M rows too (about 40 s) instead of "
        "extrapolating from 100k",
    )
    args = parser.parse_args()
    results: list[tuple[str, int, float, str, str]] = []
    with (
        database_cluster(
            backend="local", optimize_for_testing=True, extensions=("postgis",)
        ) as cluster,
        tempfile.TemporaryDirectory() as tmp,
    ):
        engine = cluster.engine
        url = engine.url
        url_text = url.render_as_string(hide_password=False)
        with engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
            conn.execute(text(TABLE_DDL))
        em_100k: float | None = None
        for n in (100_000, 1_000_000):
            path = Path(tmp) / f"rows_{n}.tsv"
            write_copy_file(path, n)
            psql_t, ours_t, rss = [], [], []
            for _ in range(args.repeat):
                psql_t.append(run_psql(url, path))
                count_and_truncate(engine, n)
                elapsed, before, peak = run_copy_rows(url_text, n)
                ours_t.append(elapsed)
                rss.append((before, peak))
                count_and_truncate(engine, n)
            pre, _, _ = run_copy_rows(url_text, n, prebuilt=True)
            count_and_truncate(engine, n)
            if n == 100_000 or args.measure_executemany_1m:
                em = run_executemany(engine, n)
                count_and_truncate(engine, n)
                em_label = "measured"
                if n == 100_000:
                    em_100k = em
            else:
                assert em_100k is not None
                em, em_label = em_100k * n / 100_000, "extrapolated from 100k"
            before, peak = max(rss, key=lambda r: r[1])
            p, o = min(psql_t), min(ours_t)
            rss_text = f"{before // 1024} -> {peak // 1024} MiB"
            results.append(("psql \\copy", n, p, "1.00x psql", "(psql process)"))
            results.append(
                (
                    "copy_rows",
                    n,
                    o,
                    f"{o / p:.2f}x psql; {em / o:.1f}x faster than executemany",
                    rss_text,
                )
            )
            results.append(
                ("copy_rows (rows pre-built in a list)", n, pre, f"{pre / p:.2f}x psql; {em / pre:.1f}x faster than executemany", "(not flat: holds the list)")
            )  # fmt: skip
            results.append(
                (f"SQLAlchemy executemany ({em_label})", n, em, f"{em / p:.2f}x psql", "")
            )  # fmt: skip
        cluster.cleanup()
    print(
        f"\n{'case':<46} {'rows':>9} {'best s':>8}  {'relative':<48} peak RSS (child)"
    )
    for name, n, secs, rel, mem in results:
        print(f"{name:<46} {n:>9,} {secs:>8.2f}  {rel:<48} {mem}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
