"""Differential test of `run_sql` against ``psql``, failures included.

`run_sql` must behave exactly like psql running the same file:

=====================================  ==========================================
``run_sql(...)``                       ``psql -X -f file``
=====================================  ==========================================
``raise_errors=True`` (mode "stop")    ``-v ON_ERROR_STOP=1``
``raise_errors=False`` ("continue")    (no ON_ERROR_STOP: report errors, go on)
``atomic=True`` ("atomic")             ``-1 -v ON_ERROR_STOP=1``
=====================================  ==========================================

Each script (random ones from `sqlgen.generate`, and hand-written regression
cases) runs with psql into one fresh database and with `run_sql` into another,
both prepared with the same setup SQL.  Then these must be equal:

* every table's rows, ids included; every sequence's ``last_value`` and
  ``is_called``; the user catalog (relations and owners, columns, functions,
  views, indexes and their validity, constraints, comments);
* the failures: psql's ``psql:FILE:LINE: ERROR:  SQLSTATE: …`` lines (``-v
  VERBOSITY=verbose`` puts the SQLSTATE in) against `run_sql`'s raised error or
  its failed outcomes, as (line of the statement's ``;``, SQLSTATE) pairs.

psql behaviour the harness accounts for:

* psql reports the line where the statement ENDS (the line of its ``;``),
  not its first line; several statements on one line share it.  `run_sql`'s
  ``.line`` is the first line of the statement's first token (checked
  separately against the generator's positions).
* ``COPY … FROM stdin`` whose data the server rejects is reported at the line
  of the ``\\.`` ending the data; a COPY refused before any data (missing
  table, aborted block) at the line of its ``;`` (psql then skips the data).
* With ``-1``, a failure of the final ``COMMIT`` (a deferred constraint) is
  printed without the ``psql:FILE:LINE:`` prefix: it belongs to no statement;
  `run_sql`'s error for it must have ``index`` None.
* NOTICEs and WARNINGs (``CREATE TABLE IF NOT EXISTS``, ``COMMIT`` outside a
  block, ``SET LOCAL`` outside a block...) are not errors.
* ``COMMIT`` of an aborted block is not an error (the server answers ROLLBACK).
* At ON_ERROR_STOP, and at the end of the file, psql disconnects: an open
  block is rolled back by the server.
* psql sets ``application_name`` and picks ``client_encoding`` from the
  locale: scripts record neither, and psql runs with ``PGCLIENTENCODING=UTF8``
  and no other ``PG*`` variable from the environment.
* A client that has gone may leave its backend running a moment (dropping
  temporary tables, rolling back): snapshots wait until no other session uses
  the database, and leave temporary schemas out.

The harness checks itself: psql's run must fail where the generator planned
failures (and not fail without any), and `test_psql_agrees_with_itself` runs
psql against psql (they must agree) plus a negative control.

On a divergence the message names the mode, the seed, the script's path under
pytest's ``tmp_path`` and shows the script with line numbers, the two lists
of failures and a diff of what differs in the databases.

``MACROSTRAT_SQLGEN_SEEDS=N`` runs N random scripts per mode (default 30).
"""

from __future__ import annotations

import contextlib
import difflib
import importlib.util
import os
import re
import secrets
import subprocess
import sys
import threading
import time
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import make_url

from macrostrat.database import Database, create_engine
from macrostrat.database.query import run_sql
from macrostrat.dinosaur.testing import clone_database


def _load_sqlgen() -> Any:
    """Import the sibling module ``sqlgen.py`` (tests use importlib mode)."""
    name = "macrostrat_database_tests_sqlgen"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, Path(__file__).with_name("sqlgen.py")
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


sqlgen = _load_sqlgen()
Script = sqlgen.Script
Statement = sqlgen.Statement

SEEDS = int(os.environ.get("MACROSTRAT_SQLGEN_SEEDS", "30"))

PSQL_FLAGS = {
    "stop": ["-v", "ON_ERROR_STOP=1"],
    "continue": [],
    "atomic": ["-1", "-v", "ON_ERROR_STOP=1"],
}

RUN_SQL_OPTIONS: dict[str, dict[str, Any]] = {
    "stop": {"raise_errors": True},
    "continue": {"raise_errors": False},
    "atomic": {"atomic": True, "raise_errors": True},
}

# failures the generator plans that always fail where they stand (the deferred
# ones fail at COMMIT, or not at all when their block was already aborted)
FAILS = "fail:"
DEFERRED = ("fail:deferred_later", "fail:deferred_commit")

# -- the databases -------------------------------------------------------------

# temporary schemas are left out: a session's temporary objects are dropped by
# its backend after the client has gone, so they may still be seen just after
_USER = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'"
)

CATALOG_QUERIES = {
    "relations": f"""
        SELECT n.nspname, c.relname, c.relkind, pg_get_userbyid(c.relowner)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_USER} ORDER BY 1, 2""",
    "columns": f"""
        SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
               a.attnotnull, a.attidentity, pg_get_expr(d.adbin, d.adrelid)
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE {_USER} AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1, 2, 3""",
    "functions": f"""
        SELECT n.nspname, p.proname, pg_get_functiondef(p.oid) FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {_USER} ORDER BY 1, 2, 3""",
    "views": f"""
        SELECT n.nspname, c.relname, pg_get_viewdef(c.oid) FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_USER} AND c.relkind IN ('v', 'm') ORDER BY 1, 2""",
    "indexes": f"""
        SELECT n.nspname, c.relname, pg_get_indexdef(c.oid), x.indisvalid, x.indisready
        FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_USER} ORDER BY 1, 2""",
    "constraints": f"""
        SELECT n.nspname, c.conrelid::regclass::text, c.conname,
               pg_get_constraintdef(c.oid)
        FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
        WHERE {_USER} ORDER BY 1, 2, 3""",
    "comments": f"""
        SELECT n.nspname, c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_USER} AND obj_description(c.oid, 'pg_class') IS NOT NULL ORDER BY 1, 2""",
}


def conninfo(url: str) -> str:
    """A libpq connection string for a SQLAlchemy URL."""
    return (
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


def wait_for_other_sessions(conn: psycopg.Connection[Any], timeout: float = 30) -> None:
    """Wait until no other session uses the database.

    A client that has disconnected may leave its backend running a moment
    longer (dropping its temporary tables, rolling back an open block).
    """
    deadline = time.monotonic() + timeout
    while True:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
        if not row or not row[0]:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{row[0]} session(s) still use the database")
        time.sleep(0.02)


def snapshot(url: str) -> dict[str, Any]:
    """The user catalog, every sequence's state and every table's rows."""
    found: dict[str, Any] = {}
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        wait_for_other_sessions(conn)
        for name, query in CATALOG_QUERIES.items():
            found[name] = conn.execute(query).fetchall()
        objects = conn.execute(
            f"""SELECT n.nspname, c.relname, c.relkind FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE {_USER} AND c.relkind IN ('r', 'p', 'S') ORDER BY 1, 2"""
        ).fetchall()
        for schema, name, kind in objects:
            ident = sql.Identifier(schema, name)
            if kind == "S":
                query = sql.SQL("SELECT last_value, is_called FROM {}").format(ident)
                found[f"sequence {schema}.{name}"] = conn.execute(query).fetchall()
            else:
                # rows in key order (ORDER BY the row), for readable diffs
                query = sql.SQL("SELECT t::text FROM {} AS t ORDER BY t").format(ident)
                found[f"rows {schema}.{name}"] = [
                    r[0] for r in conn.execute(query).fetchall()
                ]
    return found


def prepare(url: str, setup: str) -> None:
    """Run ``setup`` in database ``url`` (one implicit transaction).

    Also gives the database a ``lock_timeout``, so a run that waits on its
    own locks fails instead of hanging the suite (both sides get it).
    """
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        name = conn.info.dbname
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET lock_timeout = '20s'").format(
                sql.Identifier(name)
            )
        )
        if setup.strip():
            conn.execute(setup.encode())


@contextlib.contextmanager
def prepared_pair(database_url: str, setup: str) -> Iterator[tuple[str, str]]:
    """Two fresh databases (from template0) with ``setup`` applied to each."""
    with (
        clone_database(database_url, "template0") as first,
        clone_database(database_url, "template0") as second,
    ):
        prepare(first, setup)
        prepare(second, setup)
        yield first, second


# -- running psql and run_sql ------------------------------------------------------


@dataclass
class Failure:
    """One failed statement, located as psql locates it."""

    where: str  # "line N" (the line of its ';'), or "COMMIT" (psql -1's own)
    sqlstate: str | None
    message: str

    @property
    def key(self) -> tuple[str, str | None]:
        return (self.where, self.sqlstate)


@dataclass
class Observed:
    """What one side did: its failures, its database afterwards, and problems."""

    side: str
    failures: list[Failure]
    snapshot: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # e.g. wrong .line
    stderr: str = ""


_LOCATED = re.compile(
    r"^(?P<sev>ERROR|FATAL|PANIC):  (?P<code>[0-9A-Z]{5}): (?P<msg>.*)$"
)


def psql_path() -> Path:
    """psql next to the server binaries the test cluster uses."""
    from macrostrat.dinosaur.cluster import find_postgres_binaries
    from macrostrat.dinosaur.errors import PostgresNotFoundError

    try:
        path = find_postgres_binaries().path("psql")
    except PostgresNotFoundError as exc:
        pytest.skip(f"requires psql (no PostgreSQL binaries found: {exc})")
    if not os.access(path, os.X_OK):
        pytest.skip(f"requires psql ({path} is missing)")
    return path


def parse_psql_errors(
    stderr: str, path: Path, script: Script
) -> tuple[list[Failure], list[str]]:
    """psql's ERROR lines (and any client-side ``error:`` line, as problems).

    A located error's line is mapped to the line of its statement's ``;``
    (psql reports rejected COPY data at the ``\\.`` line).
    """
    failures: list[Failure] = []
    problems: list[str] = []
    prefix = f"psql:{path}:"
    for line in stderr.splitlines():
        where = "COMMIT"
        rest = line
        if line.startswith(prefix):
            number, _, rest = line[len(prefix) :].partition(": ")
            if not number.isdigit():
                problems.append(f"unparsed psql line: {line}")
                continue
            where = f"line {script.psql_line(int(number))}"
        m = _LOCATED.match(rest)
        if m is not None:
            failures.append(Failure(where, m["code"], m["msg"]))
        elif re.match(r"^(psql:.*: )?(error|fatal):", line) or re.match(
            r"^(FATAL|PANIC):", rest
        ):
            problems.append(f"psql client error: {line}")
    return failures, problems


def observe_psql(url: str, path: Path, mode: str, script: Script) -> Observed:
    """Run ``path`` with psql in ``mode`` into ``url``."""
    u = make_url(url)
    cmd = [
        str(psql_path()),
        "-X",
        "-q",
        "-v",
        "VERBOSITY=verbose",
        *PSQL_FLAGS[mode],
        "-h",
        str(u.host),
        "-p",
        str(u.port or 5432),
        "-U",
        str(u.username),
        "-d",
        str(u.database),
        "-o",
        os.devnull,
        "-f",
        str(path),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGPASSWORD"] = u.password or ""
    env["PGCLIENTENCODING"] = "UTF8"
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=env, timeout=300, check=False
    )
    failures, problems = parse_psql_errors(proc.stderr, path, script)
    expected_rc = 3 if failures and mode != "continue" else 0
    if proc.returncode != expected_rc:
        problems.append(
            f"psql exited with {proc.returncode} (expected {expected_rc}) "
            f"after {len(failures)} error(s)"
        )
    return Observed("psql", failures, problems=problems, stderr=proc.stderr)


def _sqlstate(exc: BaseException | None) -> str | None:
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None)


def _describe_exc(exc: BaseException | None) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _run_sql_failure(
    script: Script,
    exc: BaseException | None,
    index: Any,
    line: Any,
    problems: list[str],
) -> Failure:
    """A run_sql failure located like psql's, checking its ``.line``.

    An atomic run's failure that belongs to no statement (``index`` None: its
    final COMMIT) is located as psql locates its ``-1`` COMMIT's: "COMMIT".
    """
    if index is None and script.mode == "atomic":
        return Failure("COMMIT", _sqlstate(exc), _describe_exc(exc))
    if not isinstance(index, int) or not 0 <= index < len(script.statements):
        return Failure(
            f"no statement (index={index!r})",
            _sqlstate(exc),
            f"{type(exc).__name__}: {_describe_exc(exc)}",
        )
    st = script.statements[index]
    if line != st.first_line:
        problems.append(
            f"run_sql puts statement {index + 1} at line {line}; "
            f"its first token is on line {st.first_line}"
        )
    return Failure(f"line {st.end_line}", _sqlstate(exc), _describe_exc(exc))


def observe_run_sql(url: str, path: Path, mode: str, script: Script) -> Observed:
    """Run ``path`` with run_sql in ``mode`` into ``url``.

    Every other script goes through a `Database` (its session connection)
    rather than an engine's own connection.
    """
    failures: list[Failure] = []
    problems: list[str] = []
    engine = create_engine(url)
    through: Any = engine
    if zlib.crc32(str(script.seed).encode()) % 2:
        through = Database(engine)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                res = run_sql(through, path, **RUN_SQL_OPTIONS[mode])
            except Exception as exc:
                if mode == "continue" or not hasattr(exc, "index"):
                    problems.append(f"run_sql raised {type(exc).__name__}: {exc}")
                failures.append(
                    _run_sql_failure(
                        script,
                        exc,
                        getattr(exc, "index", None),
                        getattr(exc, "line", None),
                        problems,
                    )
                )
            else:
                outcomes = res.outcomes
                if len(outcomes) != len(script.statements):
                    problems.append(
                        f"run_sql has {len(outcomes)} outcomes for "
                        f"{len(script.statements)} statements"
                    )
                for o in outcomes:
                    if o.status == "failed":
                        failures.append(
                            _run_sql_failure(script, o.error, o.index, o.line, problems)
                        )
                if mode != "continue" and failures:
                    problems.append("raise_errors=True returned failed outcomes")
    finally:
        if isinstance(through, Database):
            through.cleanup()  # psql ends its session too
        engine.dispose()
    return Observed("run_sql", failures, problems=problems)


def observe(side: str, url: str, path: Path, mode: str, script: Script) -> Observed:
    """Run the script on one side, then take the database's snapshot."""
    if side == "psql":
        found = observe_psql(url, path, mode, script)
    else:
        found = observe_run_sql(url, path, mode, script)
    found.snapshot = snapshot(url)
    return found


# -- comparing ---------------------------------------------------------------------


def _lines(value: Any) -> list[str]:
    if isinstance(value, list):
        return [repr(v) if not isinstance(v, str) else v for v in value]
    return [repr(value)]


def snapshot_diff(a: dict[str, Any], b: dict[str, Any], names: tuple[str, str]) -> str:
    """A readable diff of two snapshots (only what differs)."""
    out: list[str] = []
    for key in sorted(a.keys() | b.keys()):
        if a.get(key) == b.get(key):
            continue
        if key not in a or key not in b:
            out.append(f"{key}: only in {names[0] if key in a else names[1]}")
            continue
        out.append(f"{key}:")
        out += [
            "    " + line
            for line in difflib.unified_diff(
                _lines(a[key]), _lines(b[key]), names[0], names[1], lineterm="", n=2
            )
        ]
    return "\n".join(out)


def _show_failures(obs: Observed, script: Script) -> str:
    if not obs.failures:
        return f"  {obs.side}: no failure"
    rows = []
    for f in obs.failures:
        idx = []
        if f.where.startswith("line "):
            idx = script.by_end_line(int(f.where.split()[1]))
        which = ",".join(str(i + 1) for i in idx) or "-"
        rows.append(
            f"  {obs.side}: {f.where} (statement {which}) {f.sqlstate}: {f.message}"
        )
    return "\n".join(rows)


def divergence(
    script: Script, path: Path, first: Observed, second: Observed, role: str
) -> str | None:
    """Why ``second`` differs from ``first`` (psql), or None."""
    parts: list[str] = []
    firsts = [f.key for f in first.failures]
    seconds = [f.key for f in second.failures]
    if firsts != seconds:
        parts.append(
            "failures differ (location = line of the statement's ';'):\n"
            + _show_failures(first, script)
            + "\n"
            + _show_failures(second, script)
        )
    if second.problems:
        parts.append(f"{second.side} problems:\n  " + "\n  ".join(second.problems))
    diff = snapshot_diff(first.snapshot, second.snapshot, (first.side, second.side))
    if diff:
        parts.append("databases differ:\n" + diff)
    if not parts:
        return None
    header = (
        f"{second.side} diverges from {first.side}: mode={script.mode} "
        f"seed={script.seed} ({len(script.statements)} statements)\n"
        f"script: {path}"
    )
    if isinstance(script.seed, int):
        header += (
            f"\nreproduce: sqlgen.generate({script.seed}, {script.mode!r}, {role!r}, "
            "prepare_transaction=...) on top of sqlgen.SETUP_SQL"
        )
    return "\n\n".join([header, *parts, "script:\n" + script.numbered()])


def harness_problems(script: Script, psql: Observed) -> list[str]:
    """Check psql's run against what the generator planned (harness sanity).

    Planned failures must fail in psql where they stand, and a script
    without any must run without error: otherwise the generator or the
    parsing of psql's output is wrong, not run_sql.
    """
    problems = list(psql.problems)
    at = {f.where for f in psql.failures}
    planned = [
        st
        for st in script.statements
        if st.tag.startswith(FAILS) and st.tag not in DEFERRED
    ]
    deferred = [st for st in script.statements if st.tag in DEFERRED]
    if script.mode == "continue":
        for st in planned:
            if f"line {st.end_line}" not in at:
                problems.append(
                    f"planned failure {st.tag} on line {st.end_line} did not fail in psql"
                )
    elif planned:
        first = planned[0]
        lines = [int(w.split()[1]) for w in at if w.startswith("line ")]
        if not lines or min(lines) > first.end_line:
            problems.append(
                f"planned failure {first.tag} on line {first.end_line}: psql "
                f"reported {sorted(at)}"
            )
    elif not deferred and psql.failures:
        problems.append(
            f"a script without planned failures failed in psql: {sorted(at)}"
        )
    return problems


def run_pair(
    database_url: str,
    tmp_path: Path,
    script: Script,
    setup: str,
    *,
    second_side: str = "run_sql",
    second_mode: str | None = None,
) -> tuple[Path, Observed, Observed]:
    """Write ``script`` under ``tmp_path``; run it with psql and ``second_side``.

    ``second_mode`` runs the second side in another mode (the harness's
    negative control).
    """
    path = tmp_path / f"{script.mode}-{script.seed}.sql"
    path.write_text(script.text)
    with prepared_pair(database_url, setup) as (one, two):
        # the two sides use different databases: run psql in a thread meanwhile
        box: dict[str, Any] = {}

        def in_thread() -> None:
            try:
                box["psql"] = observe("psql", one, path, script.mode, script)
            except BaseException as exc:
                box["error"] = exc

        worker = threading.Thread(target=in_thread)
        worker.start()
        try:
            second = observe(second_side, two, path, second_mode or script.mode, script)
        finally:
            worker.join()
        if "error" in box:
            raise box["error"]
    return path, box["psql"], second


# -- fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlgen_role(database_url: str) -> Iterator[str]:
    """A role scripts may ``SET ROLE`` to: reads and writes data, creates nothing."""
    name = f"rsq_{secrets.token_hex(4)}"
    ident = sql.Identifier(name)
    with psycopg.connect(conninfo(database_url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        if not (row and row[0]):
            pytest.skip(
                "requires a superuser connection (scripts create roles and use "
                "SET SESSION AUTHORIZATION)"
            )
        conn.execute(
            sql.SQL(
                "CREATE ROLE {} NOLOGIN IN ROLE pg_read_all_data, pg_write_all_data"
            ).format(ident)
        )
    yield name
    with psycopg.connect(conninfo(database_url), autocommit=True) as conn:
        try:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(ident))
        except psycopg.Error as exc:  # a leftover database still owns something
            warnings.warn(f"could not drop role {name}: {exc}", stacklevel=1)


@pytest.fixture(scope="session")
def prepared_transactions_disabled(database_url: str) -> bool:
    """``PREPARE TRANSACTION`` fails on this server (scripts may then use it)."""
    with psycopg.connect(conninfo(database_url), autocommit=True) as conn:
        row = conn.execute("SHOW max_prepared_transactions").fetchone()
    return row is not None and str(row[0]) == "0"


@pytest.fixture(scope="session")
def psql(database_url: str) -> Path:
    """The psql program (skips naming it when there is none)."""
    return psql_path()


# -- random scripts --------------------------------------------------------------------

CASES = [(mode, seed) for mode in sqlgen.MODES for seed in range(SEEDS)]


@pytest.mark.parametrize(("mode", "seed"), CASES, ids=[f"{m}-{s}" for m, s in CASES])
def test_run_sql_matches_psql_on_random_scripts(
    mode: str,
    seed: int,
    database_url: str,
    sqlgen_role: str,
    prepared_transactions_disabled: bool,
    psql: Path,
    tmp_path: Path,
) -> None:
    script = sqlgen.generate(
        seed, mode, sqlgen_role, prepare_transaction=prepared_transactions_disabled
    )
    path, theirs, ours = run_pair(database_url, tmp_path, script, sqlgen.SETUP_SQL)
    problems = harness_problems(script, theirs)
    assert not problems, (
        f"harness problem (generator or psql parsing), mode={mode} seed={seed}, "
        f"script {path}:\n" + "\n".join(problems) + "\n" + theirs.stderr
    )
    message = divergence(script, path, theirs, ours, sqlgen_role)
    assert message is None, message


def test_psql_agrees_with_itself(
    database_url: str, sqlgen_role: str, psql: Path, tmp_path: Path
) -> None:
    """Harness sanity: two psql runs of the same script into two databases agree."""
    for mode in sqlgen.MODES:
        for seed in (0, 1):
            script = sqlgen.generate(seed, mode, sqlgen_role, prepare_transaction=False)
            path, first, second = run_pair(
                database_url, tmp_path, script, sqlgen.SETUP_SQL, second_side="psql"
            )
            assert not harness_problems(script, first), first.stderr
            message = divergence(script, path, first, second, sqlgen_role)
            assert message is None, message
            assert first.snapshot["rows public.log"] or mode == "atomic"

    # negative control: the harness sees a difference where there is one (a
    # failure followed by more statements, run with and without ON_ERROR_STOP)
    def fails_early(script: Script) -> bool:
        return any(
            st.tag.startswith(FAILS) and st.tag not in DEFERRED and not st.in_block
            for st in script.statements[:-5]
        )

    script = next(
        script
        for script in (
            sqlgen.generate(seed, "stop", sqlgen_role) for seed in range(100)
        )
        if fails_early(script)
    )
    path, first, second = run_pair(
        database_url,
        tmp_path,
        script,
        sqlgen.SETUP_SQL,
        second_side="psql",
        second_mode="continue",
    )
    message = divergence(script, path, first, second, sqlgen_role)
    assert message is not None
    assert "databases differ" in message


# -- regression cases from the bug report ------------------------------------------------

SERIAL_T = "CREATE TABLE t (id serial PRIMARY KEY, v text);\n" + (
    "CREATE TABLE log (id serial PRIMARY KEY, v text);"
)


def script_of(mode: str, *statements: str, name: str = "case") -> Script:
    """A hand-written script, one statement per line."""
    stmts = [Statement(text) for text in statements]
    text = sqlgen.layout(stmts)
    return Script(seed=name, mode=mode, text=text, statements=stmts)  # type: ignore[arg-type]


def check_case(
    database_url: str, tmp_path: Path, script: Script, setup: str = SERIAL_T
) -> Observed:
    """Compare run_sql with psql on ``script``; return psql's observation."""
    path, theirs, ours = run_pair(database_url, tmp_path, script, setup)
    assert not theirs.problems, theirs.stderr
    message = divergence(script, path, theirs, ours, "-")
    assert message is None, message
    return theirs


def test_duplicate_serial_key_stops_and_keeps_the_first_row(
    database_url: str, psql: Path, tmp_path: Path
) -> None:
    script = script_of(
        "stop",
        "INSERT INTO t (v) VALUES ('a')",
        "INSERT INTO t (id, v) VALUES (1, 'b')",
    )
    theirs = check_case(database_url, tmp_path, script)
    assert [f.key for f in theirs.failures] == [("line 2", "23505")]
    assert theirs.snapshot["rows public.t"] == ["(1,a)"]
    assert theirs.snapshot["sequence public.t_id_seq"] == [(1, True)]


def test_insert_before_a_failure_keeps_its_serial_id(
    database_url: str, psql: Path, tmp_path: Path
) -> None:
    script = script_of("stop", "INSERT INTO t (v) VALUES ('a')", "SELECT 1/0")
    theirs = check_case(database_url, tmp_path, script)
    assert [f.key for f in theirs.failures] == [("line 2", "22012")]
    assert theirs.snapshot["rows public.t"] == ["(1,a)"]


@pytest.mark.parametrize(
    "statement",
    ["LOCK TABLE t IN SHARE MODE", "DECLARE c CURSOR FOR SELECT 1"],
    ids=["lock", "declare"],
)
@pytest.mark.parametrize("mode", ["stop", "continue"])
def test_block_only_statements_fail_outside_a_block(
    statement: str, mode: str, database_url: str, psql: Path, tmp_path: Path
) -> None:
    script = script_of(
        mode,
        "INSERT INTO t (v) VALUES ('a')",
        statement,
        "INSERT INTO t (v) VALUES ('b')",
        name=statement.split()[0].lower(),
    )
    theirs = check_case(database_url, tmp_path, script)
    assert [f.key for f in theirs.failures] == [("line 2", "25P01")]
    rows = ["(1,a)", "(2,b)"] if mode == "continue" else ["(1,a)"]
    assert theirs.snapshot["rows public.t"] == rows


@pytest.mark.parametrize(
    "local",
    ["SET LOCAL work_mem = '1MB'", "SELECT set_config('work_mem', '1MB', true)"],
    ids=["set-local", "set_config"],
)
def test_set_local_outside_a_block_does_not_leak(
    local: str, database_url: str, psql: Path, tmp_path: Path
) -> None:
    script = script_of(
        "stop",
        "INSERT INTO log (v) SELECT current_setting('work_mem')",
        local,
        "INSERT INTO log (v) SELECT current_setting('work_mem')",
        name=local.split()[0].lower(),
    )
    theirs = check_case(database_url, tmp_path, script)
    assert theirs.failures == []
    before, after = theirs.snapshot["rows public.log"]
    assert before.split(",")[1] == after.split(",")[1] != "1MB)"


def test_atomic_syntax_error_is_reported_at_its_own_statement(
    database_url: str, psql: Path, tmp_path: Path
) -> None:
    script = script_of(
        "atomic",
        "INSERT INTO t (v) VALUES ('a')",
        "INSERT INTO t (v) VALUES ('b')",
        "SELEC 1",
        "INSERT INTO t (v) VALUES ('c')",
    )
    path, theirs, ours = run_pair(database_url, tmp_path, script, SERIAL_T)
    assert [f.key for f in theirs.failures] == [("line 3", "42601")]
    assert theirs.snapshot["rows public.t"] == []
    assert theirs.snapshot["sequence public.t_id_seq"] == [(2, True)]
    message = divergence(script, path, theirs, ours, "-")
    assert message is None, message


def test_user_block_failure_in_continue_mode_aborts_until_commit(
    database_url: str, psql: Path, tmp_path: Path
) -> None:
    """psql without ON_ERROR_STOP: 25P02 after a failure until the block ends."""
    script = script_of(
        "continue",
        "BEGIN",
        "INSERT INTO t (v) VALUES ('a')",
        "SELECT 1/0",
        "INSERT INTO t (v) VALUES ('b')",
        "COMMIT",
        "INSERT INTO t (v) VALUES ('c')",
    )
    theirs = check_case(database_url, tmp_path, script)
    assert [f.key for f in theirs.failures] == [
        ("line 3", "22012"),
        ("line 4", "25P02"),
    ]
    # 'a' took id 1 and was rolled back; 'b' never ran
    assert theirs.snapshot["rows public.t"] == ["(2,c)"]


def test_psql_reports_the_last_line_of_a_multiline_statement(
    database_url: str, psql: Path, tmp_path: Path
) -> None:
    """The harness's premise: psql's ``psql:FILE:LINE`` is the line of the ';'."""
    stmts = [
        Statement("SELECT 1"),
        Statement(
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$\n  SELECT nope;\n$$"
        ),
    ]
    script = Script(
        seed="lines", mode="continue", text=sqlgen.layout(stmts), statements=stmts
    )
    theirs = check_case(database_url, tmp_path, script)
    assert (stmts[1].first_line, stmts[1].end_line) == (2, 4)
    assert [f.key for f in theirs.failures] == [("line 4", "42703")]


@pytest.mark.parametrize(
    ("begin", "fact"),
    [
        ("BEGIN READ ONLY", "current_setting('transaction_read_only')"),
        (
            "BEGIN ISOLATION LEVEL REPEATABLE READ",
            "current_setting('transaction_isolation')",
        ),
    ],
    ids=["read-only", "isolation"],
)
def test_rollback_and_chain_after_a_failure(
    begin: str, fact: str, database_url: str, psql: Path, tmp_path: Path
) -> None:
    """The block chained after a failed one has the characteristics the server gives it.

    (On PostgreSQL 15 the chained transaction of an ABORTED block does not
    keep READ ONLY / the isolation level; psql just shows what the server does.)
    """
    script = script_of(
        "continue",
        begin,
        "SELECT 1/0",
        "ROLLBACK AND CHAIN",
        f"INSERT INTO log (v) SELECT {fact}",
        "COMMIT",
    )
    theirs = check_case(database_url, tmp_path, script)
    assert theirs.failures[0].key == ("line 2", "22012")
