"""Cold start of a throwaway PostGIS cluster: ours against doing it by hand.

Baseline (same run, same machine): ``initdb``, ``pg_ctl start -w`` and
``psql -c "CREATE EXTENSION postgis"``, then ``pg_ctl stop``, run as the server's
user.  Ours: `database_cluster(backend="local", extensions=("postgis",))` up to
a connected `Database` that answered a query, then its teardown.

    uv run python bench/bench_cluster.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import measure_interleaved, print_table

from macrostrat.dinosaur.cluster import database_cluster
from macrostrat.dinosaur.cluster._binaries import find_postgres_binaries
from macrostrat.dinosaur.cluster.local import _free_port, _server_account


def by_hand() -> None:
    bins = find_postgres_binaries()
    account = _server_account(None)
    user_kwargs = (
        {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        if account
        else {}
    )
    base = Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        if account:
            os.chown(base, account.pw_uid, account.pw_gid)
        data = base / "data"

        def run(*args: str) -> None:
            subprocess.run(
                args,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=base,
                **user_kwargs,
            )

        port = str(_free_port())

        run(str(bins.path("initdb")), "-D", str(data), "-U", "postgres", "-A", "trust")
        run(
            str(bins.path("pg_ctl")),
            "-D",
            str(data),
            "-w",
            "start",
            "-o",
            f"-p {port} -k {base} -c listen_addresses=''",
        )
        try:
            run(
                str(bins.path("psql")),
                "-h",
                str(base),
                "-p",
                port,
                "-U",
                "postgres",
                "-qc",
                "CREATE EXTENSION postgis",
                "postgres",
            )
        finally:
            run(str(bins.path("pg_ctl")), "-D", str(data), "-m", "fast", "stop")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def ours() -> None:
    with (
        database_cluster(backend="local", extensions=("postgis",)) as db,
        db.engine.connect() as conn,
    ):
        conn.exec_driver_sql("SELECT postgis_lib_version()").scalar()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    ours()  # warm the page cache for both
    rows = measure_interleaved(
        [
            ("by hand: initdb + pg_ctl + CREATE EXTENSION", by_hand),
            ("database_cluster(local, postgis)", ours),
        ],
        args.repeat,
    )
    print_table(
        "Cold start to a PostGIS-enabled database (target <= 1.3x)", rows, rows[0][0]
    )


if __name__ == "__main__":
    main()
