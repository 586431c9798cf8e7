"""Scale-out figures: PgBouncer's cost per query, a topology's start, failover time.

All on throwaway servers from the local binaries (`local_topology`), in the
same run:

* ``run_query`` through PgBouncer (transaction pooling) beside the same calls
  straight to the server, and raw psycopg both ways as the floor;
* the time to start a primary with one hot standby and PgBouncer;
* failover: writers commit one-row units through ``run_with_retry`` on a
  multi-host URL (``target_session_attrs=read-write``); the primary is stopped
  with an immediate shutdown and the synchronous standby promoted; printed:
  the time from the primary's death to the first successful commit, rows
  lost and duplicated (both must be 0).

    uv run python bench/bench_scale_out.py [--queries 2000] [--repeat 3] [--failovers 3]
"""

from __future__ import annotations

import argparse
import logging
import signal
import statistics
import threading
import time

import psycopg
from _common import measure_interleaved, print_table
from sqlalchemy import text

from macrostrat.database import CommitOutcomeUnknown, Database
from macrostrat.dinosaur.cluster.topology import local_topology


def bench_pgbouncer(queries: int, repeat: int) -> None:
    with local_topology(standbys=0, pgbouncer="transaction") as topo:
        bouncer = topo.pgbouncer
        assert bouncer is not None
        options = (
            {} if bouncer.supports_prepared_statements else {"prepare_threshold": None}
        )
        direct = Database(topo.primary.url(), connect_args=dict(options))
        pooled = Database(bouncer.url(), connect_args=dict(options))
        raw_direct = psycopg.connect(topo.primary.url(), autocommit=True, **options)  # type: ignore[arg-type]
        raw_pooled = psycopg.connect(bouncer.url(), autocommit=True, **options)  # type: ignore[arg-type]

        def run(db: Database) -> None:
            for i in range(queries):
                db.run_query("SELECT :i::int", {"i": i}).scalar()

        def raw(conn: psycopg.Connection) -> None:
            for i in range(queries):
                conn.execute("SELECT %s::int", (i,)).fetchone()

        rows = measure_interleaved(
            [
                ("raw psycopg, direct", lambda: raw(raw_direct)),
                ("raw psycopg, through PgBouncer", lambda: raw(raw_pooled)),
                ("run_query, direct", lambda: run(direct)),
                ("run_query, through PgBouncer", lambda: run(pooled)),
            ],
            repeat,
        )
        print_table(
            f"{queries} queries, PgBouncer {bouncer.version[0]}.{bouncer.version[1]} "
            "in transaction pooling",
            rows,
            "run_query, direct",
        )
        per = {name: statistics.median(times) / queries * 1e6 for name, times in rows}
        print(
            "PgBouncer's cost per run_query: "
            f"{per['run_query, through PgBouncer'] - per['run_query, direct']:.0f} µs "
            f"({per['run_query, direct']:.0f} µs direct)"
        )
        raw_direct.close()
        raw_pooled.close()
        direct.engine.dispose()
        pooled.engine.dispose()


def one_failover(
    writers: int = 3, units: int = 150
) -> tuple[float, float, int, int, int]:
    """(start s, death-to-first-commit s, lost, duplicated, unknown outcomes)."""
    started = time.monotonic()
    with local_topology(standbys=1, synchronous=True) as topo:
        start_time = time.monotonic() - started
        with psycopg.connect(topo.primary.url(), autocommit=True) as conn:
            conn.execute("CREATE TABLE ledger (id bigserial, writer int, seq int)")
        db = Database(topo.multi_host_url(), connect_args={"connect_timeout": 2})
        done: list[tuple[int, int]] = []
        unknown: list[tuple[int, int]] = []
        commits: list[float] = []
        lock = threading.Lock()

        def insert(d: Database, w: int, s: int) -> None:
            d.session.execute(
                text("INSERT INTO ledger (writer, seq) VALUES (:w, :s)"),
                {"w": w, "s": s},
            )

        def writer(w: int) -> None:
            for s in range(units):
                try:
                    db.run_with_retry(
                        insert, w, s, attempts=60, base_delay=0.02, max_delay=0.2
                    )
                except CommitOutcomeUnknown:
                    with lock:
                        unknown.append((w, s))
                    continue
                with lock:
                    done.append((w, s))
                    commits.append(time.monotonic())

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
        for t in threads:
            t.start()
        while len(done) < writers * units // 3:
            time.sleep(0.005)
        proc = topo.primary._proc
        assert proc is not None
        died = time.monotonic()
        proc.send_signal(signal.SIGQUIT)
        proc.wait(10)
        topo.standbys[0].promote()
        for t in threads:
            t.join()
        db.engine.dispose()
        with psycopg.connect(topo.standbys[0].url(), autocommit=True) as conn:
            rows = conn.execute("SELECT writer, seq FROM ledger").fetchall()
        lost = len(set(done) - set(rows))
        duplicated = len(rows) - len(set(rows))
        first = min(t for t in commits if t > died) - died
        return start_time, first, lost, duplicated, len(unknown)


def main() -> None:
    logging.disable(logging.WARNING)  # the retries' warnings are expected here
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--failovers", type=int, default=3)
    args = parser.parse_args()
    bench_pgbouncer(args.queries, args.repeat)
    print(f"\nfailover, {args.failovers} run(s): start, first commit after death")
    for _ in range(args.failovers):
        start, first, lost, dup, unknown = one_failover()
        print(
            f"  topology (primary + sync standby) up in {start:.2f} s; "
            f"first commit {first:.3f} s after the primary died; "
            f"lost {lost}, duplicated {dup}, unknown outcome {unknown}"
        )


if __name__ == "__main__":
    main()
