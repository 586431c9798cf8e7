"""Secrets in connection targets: masked in logs, reprs and errors, off every argv.

Issue #17, item 5. The unit tests cover the one redaction rule
(`macrostrat.database._redact`) over every form a connection target takes;
the others run against the real test server, which checks passwords
(scram-sha-256 over TCP), with the real client programs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import threading
import time
import traceback
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy import URL, make_url

from macrostrat.database import Database
from macrostrat.database._redact import (
    MASK,
    is_secret_parameter,
    redact,
    redact_options,
    scrub,
)
from macrostrat.database.admin import create_database, wait_for_database
from macrostrat.database.dsn import parse_dsn, to_libpq_dsn
from macrostrat.database.engine import connection_url, create_engine
from macrostrat.database.errors import InvalidOptionError, TransferError
from macrostrat.database.transfer import (
    copy_database_sync,
    pg_dump_sync,
    pg_dump_to_file_sync,
    pg_restore_from_file_sync,
    select_tools,
)
from macrostrat.database.transfer.tools import (
    ClientTools,
    conninfo,
    libpq_parameters,
    tool_target,
)
from macrostrat.database.transfer.utils import database_url as transfer_url

SECRET = "S3cr3t-zebra"
OPTION_SECRET = "0pt-heron"
SSL_SECRET = "551-otter"

# -- the rule, over every form -------------------------------------------------

FORMS: list[tuple[str, object, list[str], list[str]]] = [
    # (id, target, secrets that must go, parts that must stay)
    ("userinfo", f"postgresql://u:{SECRET}@h:5432/db", [SECRET], ["u:", "h:5432/db"]),
    (
        "query password",
        f"postgresql://u@h/db?password={SECRET}&sslmode=require",
        [SECRET],
        ["sslmode=require", "password="],
    ),
    ("sslpassword", f"postgresql://u@h/db?sslpassword={SECRET}", [SECRET], ["h/db"]),
    (
        "oauth client secret",
        f"postgresql://u@h/db?oauth_client_secret={SECRET}",
        [SECRET],
        [],
    ),
    ("encoded key", f"postgresql://u@h/db?pass%77ord={SECRET}", [SECRET], []),
    (
        "encoded userinfo",
        "postgresql://u:S3%40cr%2Ft@h/db",
        ["S3%40cr%2Ft", "S3@cr/t", "cr%2Ft"],
        ["@h/db"],
    ),
    ("raw @ in userinfo", f"postgresql://u:{SECRET}@x@h/db", [SECRET, "@x"], ["@h/db"]),
    ("raw / in userinfo", f"postgresql://u:{SECRET}/x@h/db", [SECRET, "/x"], ["@h/db"]),
    (
        "options -c, encoded",
        "postgresql://h/db?options="
        + quote(f"-c app.password={SECRET} -c search_path=geo", safe=""),
        [SECRET],
        ["search_path", "geo", "app.password"],
    ),
    (
        "options --name",
        f"postgresql://h/db?options=--app.password={SECRET}",
        [SECRET],
        [],
    ),
    (
        "options -cname",
        f"postgresql://h/db?options=-capp.token%3D{SECRET}",
        [SECRET],
        [],
    ),
    (
        "keyword/value",
        f"host=h user=u password={SECRET} dbname=db",
        [SECRET],
        ["host=h", "dbname=db"],
    ),
    (
        "keyword/value quoted",
        f"host=h password='{SECRET} x\\' y' dbname=db",
        [SECRET, "x\\' y"],
        ["dbname=db"],
    ),
    (
        "keyword/value options",
        f"host=h options='-c app.password={SECRET} -c work_mem=64MB'",
        [SECRET],
        ["work_mem=64MB"],
    ),
    (
        "keyword/value URI dbname",
        f"dbname='postgresql://u:{SECRET}@h/db'",
        [SECRET],
        ["@h/db"],
    ),
    (
        "multi-host libpq",
        f"postgresql://u:{SECRET}@h1:5432,h2:5433/db?sslpassword={SSL_SECRET}"
        "&target_session_attrs=read-write",
        [SECRET, SSL_SECRET],
        ["h1:5432,h2:5433/db", "target_session_attrs=read-write"],
    ),
    (
        "multi-host SQLAlchemy",
        f"postgresql+psycopg://u:{SECRET}@/db?host=h1:5432&host=h2:5433"
        f"&password={SSL_SECRET}",
        [SECRET, SSL_SECRET],
        ["host=h1:5432&host=h2:5433"],
    ),
    (
        "URL object",
        make_url(
            f"postgresql+psycopg://u:{SECRET}@h/db?password={SSL_SECRET}"
            f"&options=-c%20app.password%3D{OPTION_SECRET}"
        ),
        [SECRET, SSL_SECRET, OPTION_SECRET],
        ["@h/db", "app.password"],
    ),
    (
        "URL.create",
        URL.create(
            "postgresql",
            username="u",
            password=SECRET,
            host="h",
            database="db",
            query={"sslpassword": SSL_SECRET, "sslmode": "require"},
        ),
        [SECRET, SSL_SECRET],
        ["sslmode=require"],
    ),
    (
        "DSN",
        parse_dsn(f"postgresql://u:{SECRET}@h1,h2/db?sslpassword={SSL_SECRET}"),
        [SECRET, SSL_SECRET],
        ["h1,h2/db"],
    ),
    (
        "message quoting a URI",
        f"could not connect to postgresql://u:{SECRET}@h/db?password={SSL_SECRET}: no",
        [SECRET, SSL_SECRET],
        ["could not connect to", "@h/db", ": no"],
    ),
]


@pytest.mark.parametrize(
    ("target", "secrets", "kept"),
    [pytest.param(t, s, k, id=i) for i, t, s, k in FORMS],
)
def test_redact_masks_every_secret_form(
    target: object, secrets: list[str], kept: list[str]
) -> None:
    """`redact` masks each secret and keeps what tells the target apart."""
    shown = redact(target)
    for secret in secrets:
        assert secret not in shown
    assert MASK in shown
    for part in kept:
        assert part in shown


@pytest.mark.parametrize(
    "target",
    [
        "postgresql://u@h:5432/db?sslmode=require&application_name=x",
        "postgresql://h1:5432,h2:5433/db?target_session_attrs=read-write",
        "sqlite:///path/to.db",
        "host=h port=5432 dbname=db sslmode=verify-full",
        "postgresql://h/db?options=-c%20search_path%3Dgeo",
        "postgresql://h/db?passfile=/home/u/.pgpass&sslkey=/k.pem",
    ],
)
def test_redact_keeps_targets_without_secrets(target: str) -> None:
    """Nothing is masked where there is no secret (``passfile`` names a file)."""
    assert redact(target) == target


def test_options_keep_their_other_settings() -> None:
    options = "-c search_path=geo -c app.password=x\\ y -capp.api_key=k --work_mem=1MB"
    assert redact_options(options) == (
        f"-c search_path=geo -c app.password={MASK} -capp.api_key={MASK} --work_mem=1MB"
    )
    assert is_secret_parameter("options", options)
    assert not is_secret_parameter("options", "-c search_path=geo")
    assert is_secret_parameter("SSLPassword", "x")


def test_scrub_masks_known_values_in_any_text() -> None:
    text = f"FATAL: bad {SECRET} (encoded {quote('p@ss', safe='')}) p@ss"
    assert scrub(text, [SECRET, "p@ss", None, ""]) == (
        f"FATAL: bad {MASK} (encoded {MASK}) {MASK}"
    )


def test_dsn_repr_and_libpq_form_hide_every_secret() -> None:
    """A `DSN`'s repr and ``to_libpq(hide_password=True)`` show no secret."""
    dsn = parse_dsn(
        f"postgresql://u:{SECRET}@h1:5432,h2/db?sslpassword={SSL_SECRET}"
        f"&options=-c%20app.password%3D{OPTION_SECRET}"
    )
    for shown in (repr(dsn), str(dsn), to_libpq_dsn(dsn, hide_password=True)):
        for secret in (SECRET, SSL_SECRET, OPTION_SECRET):
            assert secret not in shown
        assert "h1:5432,h2" in shown
    # the unmasked form still carries them (for the programs that need them)
    assert f"sslpassword={SSL_SECRET}" in dsn.to_libpq()


def test_conninfo_and_parameters_for_the_client_programs() -> None:
    """`conninfo` (argv) has no secret; `libpq_parameters` (the service file) has all.

    A ``?password=`` overrides the user information's, as in libpq.
    """
    url = parse_dsn(
        f"postgresql://u:old@h1:5432,h2:5433/db?password={SECRET}"
        f"&sslpassword={SSL_SECRET}&options=-c%20app.password%3D{OPTION_SECRET}"
        "&sslmode=prefer"
    ).to_url()
    shown = conninfo(url)
    assert shown == "postgresql://u@h1:5432,h2:5433/db?sslmode=prefer"
    params = libpq_parameters(url)
    assert params == {
        "host": "h1,h2",
        "port": "5432,5433",
        "dbname": "db",
        "user": "u",
        "password": SECRET,
        "sslpassword": SSL_SECRET,
        "options": f"-c app.password={OPTION_SECRET}",
        "sslmode": "prefer",
    }


def test_container_targets_pass_secrets_by_environment_name_only() -> None:
    """Behind a container prefix, secrets are in the environment, forwarded by name.

    ``sslpassword`` has no environment variable: it is refused rather than
    put on the command line, and the error does not show it.
    """
    tools = select_tools(
        make_url("postgresql://u@h/db"), command_prefix=["docker", "exec", "-i", "c"]
    )
    url = make_url(
        f"postgresql://u@h/db?password={SECRET}"
        f"&options=-c%20app.password%3D{OPTION_SECRET}"
    )
    target = tool_target(tools, url, "app")
    argv = tools.argv("pg_dump", "--dbname", target.dbname, forward=target.forward)
    forwarded = ["-e", "PGOPTIONS", "-e", "PGPASSWORD", "-e", "PGAPPNAME"]
    command = ["pg_dump", "--dbname", "postgresql://u@h/db"]
    assert argv == ["docker", "exec", *forwarded, "-i", "c", *command]
    assert target.env["PGPASSWORD"] == SECRET
    assert target.env["PGOPTIONS"] == f"-c app.password={OPTION_SECRET}"
    for shown in (" ".join(argv), repr(target), target.shown):
        assert SECRET not in shown
        assert OPTION_SECRET not in shown
    with pytest.raises(InvalidOptionError) as info:
        tool_target(tools, url.update_query_dict({"sslpassword": SSL_SECRET}), "app")
    assert "sslpassword" in str(info.value)
    assert SSL_SECRET not in str(info.value)


def test_local_target_is_a_private_service_file_removed_by_cleanup() -> None:
    """Local programs get ``service=macrostrat`` and a 0600 file holding every parameter."""
    local = ClientTools("local", bindir=Path("/nonexistent"), version=99)
    url = parse_dsn(
        f"postgresql://u:{SECRET}@h1,h2:5433/db?sslpassword={SSL_SECRET}"
        f"&options=-c%20app.password%3D{OPTION_SECRET}"
    ).to_url()
    with tool_target(local, url, "app") as target:
        assert target.dbname == "service=macrostrat"
        path = target.service_file
        assert path is not None
        assert target.env["PGSERVICEFILE"] == str(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        lines = path.read_text().splitlines()
        assert lines[0] == "[macrostrat]"
        assert f"password={SECRET}" in lines
        assert f"sslpassword={SSL_SECRET}" in lines
        assert f"options=-c app.password={OPTION_SECRET}" in lines
        assert "host=h1,h2" in lines
        assert "port=,5433" in lines
        assert SECRET not in repr(target)
    assert not path.exists()
    assert not path.parent.exists()
    # a password a service file cannot hold goes to PGPASSWORD instead
    with tool_target(local, url.set(password="ends in a blank "), "app") as target:
        assert target.env["PGPASSWORD"] == "ends in a blank "
        assert target.service_file is not None
        lines = target.service_file.read_text().splitlines()
        assert not [line for line in lines if line.startswith("password=")]


# -- engines, reprs, connections -----------------------------------------------


def _query_form(url: str) -> str:
    """``url`` with its password moved to ``?password=``, plus two more secrets."""
    parsed = make_url(url)
    password = parsed.password
    assert password, "the test server's URL has a password"
    moved = parsed.set(drivername="postgresql", password=None).update_query_dict(
        {
            "password": str(password),
            "sslpassword": SSL_SECRET,
            "options": f"-c app.password={OPTION_SECRET}",
        }
    )
    return moved.render_as_string(hide_password=False)


def _secrets_of(url: str) -> list[str]:
    return [str(make_url(url).password or ""), SSL_SECRET, OPTION_SECRET]


def test_engine_url_and_reprs_hold_no_secret(database_url: str) -> None:
    """``str(engine.url)``, ``repr(engine)`` and ``repr(Database)`` show no secret.

    The engine still connects with every one of them: the server checks the
    password (scram), ``options`` reach the server, and ``sslpassword``
    reaches libpq.
    """
    url = _query_form(database_url)
    password = make_url(database_url).password
    engine = create_engine(url)
    db = Database(url)
    try:
        for shown in (str(engine.url), repr(engine), repr(db), repr(db.engine.url)):
            for secret in _secrets_of(database_url):
                assert secret not in shown, shown
        assert "password" not in engine.url.query
        assert "sslpassword" not in engine.url.query
        assert engine.url.password == password  # masked by SQLAlchemy in str()
        with engine.connect() as conn:
            assert conn.execute(sa.text("SHOW app.password")).scalar() == OPTION_SECRET
            pgconn = conn.connection.driver_connection.pgconn  # type: ignore[union-attr]
            options = {o.keyword: o.val for o in pgconn.info}
            assert options[b"password"] == str(password).encode()
            assert options[b"sslpassword"] == SSL_SECRET.encode()
        assert db.run_query("SELECT 1").scalar() == 1
        # the transfer functions get every parameter back
        full = transfer_url(db)
        assert full.query["sslpassword"] == SSL_SECRET
        assert connection_url(engine).query["options"] == (
            f"-c app.password={OPTION_SECRET}"
        )
        copy = engine.execution_options(isolation_level="AUTOCOMMIT")
        assert connection_url(copy).query["sslpassword"] == SSL_SECRET
        engine.dispose()
        assert connection_url(engine).query["sslpassword"] == SSL_SECRET
    finally:
        engine.dispose()
        db.cleanup()


def test_query_password_is_the_one_used(database_url: str) -> None:
    """``?password=`` wins over the user information's (libpq's rule), and is checked."""
    base = make_url(database_url).set(drivername="postgresql")
    right = str(base.password)
    wrong = base.set(password="wrong").update_query_dict({"password": right})
    engine = create_engine(wrong)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
    refused = create_engine(
        base.set(password=None).update_query_dict({"password": "no"})
    )
    try:
        with pytest.raises(sa.exc.OperationalError, match="password authentication"):
            refused.connect()
    finally:
        refused.dispose()


# -- the client programs: argv, logs -------------------------------------------

TABLE_SQL = """
CREATE TABLE public.redaction_rows AS
  SELECT i AS id, repeat(md5(i::text), 8) AS filler FROM generate_series(1, 60000) i;
"""


class ArgvSampler:
    """Read every process's command line, over and over, while it runs.

    Also records the ``PGSERVICEFILE`` each client program was given, so a
    test can check the files are gone afterwards.
    """

    def __init__(self) -> None:
        self.command_lines: set[bytes] = set()
        self.service_files: set[str] = set()
        self.programs: set[str] = set()
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        own = str(os.getpid())
        while not self._stop.is_set():
            self.rounds += 1
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit() or entry.name == own:
                    continue
                try:
                    cmdline = Path(entry.path, "cmdline").read_bytes()
                except OSError:
                    continue
                if not cmdline:
                    continue
                self.command_lines.add(cmdline)
                program = Path(cmdline.split(b"\0")[0].decode(errors="replace")).name
                if program in ("pg_dump", "pg_restore", "psql"):
                    self.programs.add(program)
                    self._note_service_file(entry.path)

    def _note_service_file(self, path: str) -> None:
        try:
            environ = Path(path, "environ").read_bytes()
        except OSError:
            return
        for item in environ.split(b"\0"):
            if item.startswith(b"PGSERVICEFILE="):
                self.service_files.add(item.split(b"=", 1)[1].decode())

    def __enter__(self) -> ArgvSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def assert_clean(self, secrets: list[str]) -> None:
        """No sampled command line holds a secret, in clear or percent-encoded."""
        assert self.rounds > 1
        for line in self.command_lines:
            for secret in secrets:
                assert secret.encode() not in line, line
                assert quote(secret, safe="").encode() not in line, line


@pytest.fixture
def loaded_url(empty_database_url: str) -> str:
    """A fresh database with a table big enough for the programs to be seen."""
    with psycopg.connect(
        make_url(empty_database_url)
        .set(drivername="postgresql")
        .render_as_string(hide_password=False),
        autocommit=True,
    ) as conn:
        conn.execute(TABLE_SQL)
    return empty_database_url


def _count(url: str | URL) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(sa.text("SELECT count(*) FROM redaction_rows")).scalar()
            )  # type: ignore[arg-type]
    finally:
        engine.dispose()


@pytest.mark.parametrize("form", ["query", "userinfo"])
def test_no_secret_in_any_process_argv(
    form: str, loaded_url: str, new_url, tmp_path: Path
) -> None:
    """A sampler of every ``/proc/*/cmdline`` sees no secret during dump, restore and copy.

    With the password in ``?password=`` (plus ``sslpassword`` and an
    ``options`` password) or in the user information. The programs did
    authenticate (the server checks passwords) and the rows arrived; their
    service files are gone afterwards.
    """

    def shaped(url: str | URL) -> str:
        text = make_url(url).render_as_string(hide_password=False)
        return _query_form(text) if form == "query" else text

    source, restored, copied = shaped(loaded_url), shaped(new_url()), shaped(new_url())
    secrets = _secrets_of(loaded_url) if form == "query" else _secrets_of(source)[:1]
    dump = tmp_path / "db.dump"
    with ArgvSampler() as sampler:
        pg_dump_to_file_sync(source, dump, quiet=True)
        pg_restore_from_file_sync(dump, restored, create=True, quiet=True)
        copy_database_sync(source, copied, create=True, quiet=True)
    sampler.assert_clean(secrets)
    assert {"pg_dump", "pg_restore"} <= sampler.programs
    assert sampler.service_files
    for path in sampler.service_files:
        assert not Path(path).exists()
    assert _count(restored) == _count(copied) == 60000


def _service_file_of(pid: int) -> Path:
    """The ``PGSERVICEFILE`` in process ``pid``'s environment.

    Read again until it shows: just after ``exec`` the kernel may not have
    set up the new environment yet (``/proc/<pid>/environ`` reads empty).
    """
    deadline = time.monotonic() + 5
    while True:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        values = [
            item.split(b"=", 1)[1]
            for item in environ.split(b"\0")
            if item.startswith(b"PGSERVICEFILE=")
        ]
        if values or time.monotonic() > deadline:
            break
        time.sleep(0.005)
    [value] = values
    return Path(value.decode())


def test_processes_handed_to_the_caller_lose_their_service_file(
    loaded_url: str,
) -> None:
    """`pg_dump` (async) and `pg_dump_sync` return processes; their files go at exit."""
    from macrostrat.database.transfer import pg_dump

    url = _query_form(loaded_url)

    async def run() -> Path:
        proc = await pg_dump(url, args=["--table=public.redaction_rows"])
        path = _service_file_of(proc.pid)
        assert path.exists()
        out, _ = await proc.communicate()
        assert out.startswith(b"PGDMP")
        for _ in range(100):  # the clean-up task runs after the exit is seen
            if not path.exists():
                break
            await asyncio.sleep(0.01)
        return path

    assert not asyncio.run(run()).exists()
    proc = pg_dump_sync(url, args=["--table=public.redaction_rows"])
    path = _service_file_of(proc.pid)
    out, _ = proc.communicate()
    assert out.startswith(b"PGDMP")
    assert not path.exists()


def test_no_secret_in_argv_behind_a_container_prefix(
    loaded_url: str, tmp_path: Path
) -> None:
    """A ``docker exec`` prefix: secrets go by ``-e NAME``, never on docker's argv.

    A stand-in ``docker`` records its arguments and which forwarded
    variables are set, then runs the real program (as ``docker exec`` would
    run it in the container, with those variables).
    """
    record = tmp_path / "calls.txt"
    docker = tmp_path / "docker"
    docker.write_text(
        "#!/bin/sh\n"
        f'echo "argv: $*" >> {record}\n'
        "shift\n"  # exec
        "while [ $# -gt 0 ]; do case $1 in\n"
        f'  -e) eval "v=\\${{$2:+set}}"; echo "forwarded $2 $v" >> {record}; shift 2;;\n'
        "  -i) shift;;\n"
        "  *) break;;\n"
        "esac; done\n"
        "shift\n"  # the container
        'exec "$@"\n'
    )
    docker.chmod(0o755)
    source = make_url(_query_form(loaded_url)).difference_update_query(["sslpassword"])
    secrets = [str(source.query["password"]), OPTION_SECRET]
    with ArgvSampler() as sampler:
        proc = pg_dump_sync(
            source,
            command_prefix=[str(docker), "exec", "-i", "db"],
            args=["--table=public.redaction_rows"],
        )
        out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert out.startswith(b"PGDMP")
    sampler.assert_clean(secrets)
    calls = record.read_text()
    assert "forwarded PGPASSWORD set" in calls
    assert "forwarded PGOPTIONS set" in calls
    for secret in secrets:
        assert secret not in calls


def test_debug_logs_hold_no_secret(
    loaded_url: str, new_url, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every DEBUG record of the ``macrostrat`` loggers, over a whole session, is clean.

    Creating a `Database` from a URL with secrets in its query, a query, a
    dump, a restore into a new database and a copy; the records that name
    the target are there (so the check is not vacuous).
    """
    url = _query_form(loaded_url)

    def target() -> str:
        return _query_form(new_url().render_as_string(hide_password=False))

    with caplog.at_level(logging.DEBUG, logger="macrostrat"):
        db = Database(url)
        try:
            assert db.run_query("SELECT count(*) FROM redaction_rows").scalar() == 60000
            dump = tmp_path / "db.dump"
            pg_dump_to_file_sync(db, dump, quiet=True)
            pg_restore_from_file_sync(dump, target(), create=True, quiet=True)
            copy_database_sync(db, target(), create=True)
        finally:
            db.cleanup()
    text = caplog.text
    assert "creating an engine for" in text
    for needle in ("running ", "pg_dump", "pg_restore", "connecting to"):
        assert needle in text
    for secret in _secrets_of(loaded_url):
        assert secret not in text
        assert quote(secret, safe="") not in text


# -- errors ---------------------------------------------------------------------


def _unreachable(password: str) -> str:
    return (
        f"postgresql://u:{password}@127.0.0.1:1/db?password={password}"
        f"&sslpassword={SSL_SECRET}&options=-c%20app.password%3D{OPTION_SECRET}"
        "&connect_timeout=2"
    )


def _all_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)) + (
        repr(exc)
    )


@pytest.fixture
def unreachable() -> str:
    """A URL of a closed port, with secrets in every place."""
    return _unreachable(SECRET)


def test_errors_for_an_unreachable_server_hold_no_secret(
    unreachable: str, tmp_path: Path
) -> None:
    """Connecting, dumping, creating and waiting fail without showing a secret."""
    secrets = [SECRET, SSL_SECRET, OPTION_SECRET]
    failures: list[BaseException] = []
    db = Database(unreachable)
    with pytest.raises(sa.exc.OperationalError, match="port 1 failed") as info:
        db.run_query("SELECT 1")
    failures.append(info.value)
    db.cleanup()
    with pytest.raises(TransferError, match=r"127\.0\.0\.1:1") as info2:
        pg_dump_to_file_sync(unreachable, tmp_path / "x.dump", quiet=True)
    failures.append(info2.value)
    with pytest.raises(psycopg.OperationalError, match="port 1 failed") as info3:
        create_database(unreachable)
    failures.append(info3.value)
    with pytest.raises(TimeoutError, match=r"127\.0\.0\.1:1") as info4:
        wait_for_database(unreachable, timeout=1, interval=0.2, quiet=True)
    failures.append(info4.value)
    for exc in failures:
        text = _all_text(exc)
        for secret in secrets:
            assert secret not in text, text


def test_a_tools_standard_error_is_masked_in_errors_and_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A program that prints a URL with a password: not in ToolError, not logged."""
    import sys

    from macrostrat.database.errors import ToolError
    from macrostrat.database.transfer._process import Tool

    secret = "s3cr3t-pw"
    script = (
        "import sys; print('could not connect to "
        f"postgresql://u:{secret}@h/db', file=sys.stderr); sys.exit(3)"
    )

    async def run() -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, stderr=asyncio.subprocess.PIPE
        )
        tool = Tool(name="probe", step="test", process=proc)
        assert proc.stderr is not None
        tool.stderr_task = asyncio.ensure_future(tool._collect(proc.stderr))
        await tool.finish()

    with caplog.at_level(logging.DEBUG), pytest.raises(ToolError) as info:
        asyncio.run(run())
    assert secret not in str(info.value)
    assert secret not in info.value.stderr
    assert "could not connect" in info.value.stderr
    assert secret not in caplog.text
