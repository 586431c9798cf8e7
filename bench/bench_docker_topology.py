"""A topology's start and teardown in Docker beside the same from local binaries.

Each case enters and leaves a topology (everything started, caught up and
removed), the cases interleaved, in the same run:

* a primary with one synchronous hot standby (PostGIS created), from local
  binaries (`local_topology`, the baseline) and in containers (`docker_topology`);
* the same with two standbys and PgBouncer (transaction pooling) in containers.

Needs a Docker engine and a local image with PgBouncer (``scripts/build-test-images``).

    uv run python bench/bench_docker_topology.py [--repeat 5] [--image macrostrat-test/postgis:15]
"""

from __future__ import annotations

import argparse
import logging
import os

from _common import measure_interleaved, print_table

from macrostrat.dinosaur.cluster import docker_topology, local_topology


def main() -> None:
    """Time the cases and print the table."""
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--image", default="macrostrat-test/postgis:15")
    args = parser.parse_args()
    postgis = ("postgis",)

    def local_one() -> None:
        with local_topology(standbys=1, synchronous=True, extensions=postgis):
            pass

    def docker_one() -> None:
        with docker_topology(
            image=args.image, standbys=1, synchronous=True, extensions=postgis
        ):
            pass

    def docker_full() -> None:
        with docker_topology(
            image=args.image,
            standbys=2,
            synchronous=True,
            pgbouncer="transaction",
            extensions=postgis,
        ):
            pass

    rows = measure_interleaved(
        [
            ("local: primary + sync standby", local_one),
            ("docker: primary + sync standby", docker_one),
            ("docker: primary + 2 standbys + PgBouncer", docker_full),
        ],
        args.repeat,
    )
    print_table(
        f"topology up and removed, PostGIS created, {args.repeat} runs",
        rows,
        "local: primary + sync standby",
    )


if __name__ == "__main__":
    main()
