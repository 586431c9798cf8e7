"""Failover under a workload: the primary dies, a standby is promoted (issue #21).

A throwaway primary with one synchronous hot standby (`local_topology`, local
binaries, no Docker); the application connects with a multi-host URL and
``target_session_attrs=read-write``. Concurrent writers run one-row units
through ``run_with_retry`` while the primary is stopped with an immediate
shutdown (its processes end at once, no checkpoint) and the standby is
promoted. Every unit that returned must be there exactly once, none twice;
a unit whose commit outcome nobody could learn is reported as such, never
retried. The time from the primary's death to the first successful commit is
measured and printed.
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from macrostrat.database import CommitOutcomeUnknown, Database

pytestmark = pytest.mark.filterwarnings(
    "ignore::macrostrat.database.SessionResetWarning"
)

WRITERS = 3
UNITS = 120


@pytest.fixture
def topology() -> Any:
    from macrostrat.dinosaur.cluster import find_postgres_binaries
    from macrostrat.dinosaur.cluster.topology import local_topology
    from macrostrat.dinosaur.errors import PostgresNotFoundError

    try:
        find_postgres_binaries()
    except PostgresNotFoundError as exc:
        pytest.skip(f"requires PostgreSQL server binaries on this machine ({exc})")
    with local_topology(standbys=1, synchronous=True) as topo:
        yield topo


def test_failover_loses_and_duplicates_nothing(topology: Any) -> None:
    with psycopg.connect(topology.primary.url(), autocommit=True) as conn:
        # No unique key: a unit committed twice would show as two rows.
        conn.execute(
            "CREATE TABLE ledger (id bigserial PRIMARY KEY, writer int, seq int, "
            "at timestamptz DEFAULT clock_timestamp())"
        )
    topology.wait_for_replay()
    db = Database(
        topology.multi_host_url(),
        pool_size=WRITERS,
        connect_args={"connect_timeout": 2},
    )
    done: dict[int, list[int]] = {w: [] for w in range(WRITERS)}
    unknown: list[tuple[int, int, str | None]] = []
    failed: list[BaseException] = []
    commits_at: list[float] = []
    lock = threading.Lock()
    stop = threading.Event()

    def insert(d: Database, writer: int, seq: int) -> None:
        d.session.execute(
            text("INSERT INTO ledger (writer, seq) VALUES (:w, :s)"),
            {"w": writer, "s": seq},
        )

    def writer(number: int) -> None:
        for seq in range(UNITS):
            if stop.is_set():
                return
            try:
                db.run_with_retry(
                    insert, number, seq, attempts=60, base_delay=0.05, max_delay=0.3
                )
            except CommitOutcomeUnknown as exc:
                unknown.append((number, seq, exc.xid))
                continue
            except BaseException as exc:  # collected for the assertions
                failed.append(exc)
                return
            with lock:
                done[number].append(seq)
                commits_at.append(time.monotonic())
            time.sleep(0.005)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while sum(map(len, done.values())) < WRITERS * UNITS // 3 and not failed:
        if time.monotonic() > deadline:
            stop.set()
            for t in threads:
                t.join(30)
            pytest.fail(
                "the workload made no progress before the failover; primary log:\n"
                + topology.primary.log_file.read_text()[-3000:]
            )
        time.sleep(0.01)
    try:
        # The primary dies: an immediate shutdown ends all its processes at once.
        primary_proc = topology.primary._proc
        killed_at = time.monotonic()
        primary_proc.send_signal(signal.SIGQUIT)
        primary_proc.wait(10)
        topology.standbys[0].promote()
        promoted_at = time.monotonic()
    finally:
        for t in threads:
            t.join(120)
        db.engine.dispose()

    assert failed == []
    with psycopg.connect(topology.standbys[0].url(), autocommit=True) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
        rows = conn.execute("SELECT writer, seq FROM ledger").fetchall()
    counts: dict[tuple[int, int], int] = {}
    for row in rows:
        counts[row] = counts.get(row, 0) + 1
    duplicated = {k: n for k, n in counts.items() if n > 1}
    assert duplicated == {}
    lost = [(w, s) for w in done for s in done[w] if (w, s) not in counts]
    assert lost == []
    # every unit either returned or was reported unknown; nothing else is there
    expected = {(w, s) for w in done for s in done[w]}
    extra = set(counts) - expected - {(w, s) for w, s, _ in unknown}
    assert extra == set()
    after = [t for t in commits_at if t > killed_at]
    assert after, "no commit succeeded after the failover"
    print(
        f"\nfailover: {len(rows)} rows, {len(unknown)} unknown outcome(s); "
        f"promotion took {promoted_at - killed_at:.2f} s; first commit on the new "
        f"primary {min(after) - killed_at:.2f} s after the primary died"
    )


def test_a_reused_transaction_id_after_failover_is_not_taken_for_ours(
    topology: Any,
) -> None:
    """A promoted standby that never saw our transaction hands out its id again.

    Its ``pg_xact_status`` then says ``committed`` for someone else's
    transaction. The timeline recorded before COMMIT tells them apart: the
    answer is unknown, never "committed".
    """
    from contextlib import contextmanager

    from macrostrat.database._commit import resolve_outcome, transaction_xid

    standby = topology.standbys[0]
    primary = topology.primary
    with psycopg.connect(standby.url(), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET primary_conninfo = ''")
        conn.execute("SELECT pg_reload_conf()")
    with psycopg.connect(primary.url(), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET synchronous_standby_names = ''")
        conn.execute("SELECT pg_reload_conf()")
        # Reloads are asynchronous: wait until the standby has really gone
        # and the primary no longer waits for it.
        deadline = time.monotonic() + 30
        while conn.execute("SELECT count(*) FROM pg_stat_replication").fetchone() != (
            0,
        ) or conn.execute("SHOW synchronous_standby_names").fetchone() != ("",):
            assert time.monotonic() < deadline, "the standby did not disconnect"
            time.sleep(0.05)
        conn.execute("CREATE TABLE mine (v int)")
    # Ours: committed on the primary only (the standby is cut off).
    with psycopg.connect(primary.url()) as conn:
        conn.execute("INSERT INTO mine VALUES (1)")
        xid, history = transaction_xid(conn)
        conn.commit()
    assert xid is not None
    assert history is not None
    assert history.endswith("/00000001")
    proc = primary._proc
    proc.send_signal(signal.SIGQUIT)
    proc.wait(10)
    standby.promote()
    # Others' transactions on the new primary use the ids again.
    with psycopg.connect(standby.url(), autocommit=True) as conn:
        conn.execute("CREATE TABLE others (v int)")
        while int(
            conn.execute("SELECT pg_current_xact_id()::text").fetchone()[0]
        ) < int(xid):  # type: ignore[index]
            conn.execute("INSERT INTO others VALUES (1)")
        assert conn.execute("SELECT pg_xact_status(%s::xid8)", (xid,)).fetchone() == (
            "committed",
        )
        assert conn.execute("SELECT to_regclass('mine')").fetchone() == (None,)

    @contextmanager
    def reconnect() -> Any:
        with psycopg.connect(standby.url(), autocommit=True) as conn:
            yield conn

    # Without the history the answer would be a lie; with it, unknown.
    assert resolve_outcome(reconnect, str(xid), seconds=0.5) == "committed"
    assert resolve_outcome(reconnect, str(xid), history=history, seconds=0.5) is None


def test_another_cluster_on_the_same_timeline_is_not_taken_for_ours(
    topology: Any,
) -> None:
    """A different cluster behind the address (same timeline 1, another
    system identifier) that committed the same id is not our transaction."""
    from contextlib import contextmanager

    from macrostrat.database._commit import resolve_outcome, transaction_xid
    from macrostrat.dinosaur.cluster import LocalCluster

    with psycopg.connect(topology.primary.url()) as conn:
        conn.execute("CREATE TABLE mine (v int)")
        conn.execute("INSERT INTO mine VALUES (1)")
        xid, history = transaction_xid(conn)
        conn.commit()
    assert xid is not None
    with LocalCluster(optimize_for_testing=True) as other:
        with psycopg.connect(other.url(), autocommit=True) as conn:
            conn.execute("CREATE TABLE others (v int)")
            while int(
                conn.execute("SELECT pg_current_xact_id()::text").fetchone()[0]
            ) < int(xid):  # type: ignore[index]
                conn.execute("INSERT INTO others VALUES (1)")

        @contextmanager
        def reconnect() -> Any:
            with psycopg.connect(other.url(), autocommit=True) as conn:
                yield conn

        assert resolve_outcome(reconnect, str(xid), seconds=0.5) == "committed"
        assert (
            resolve_outcome(reconnect, str(xid), history=history, seconds=0.5) is None
        )
