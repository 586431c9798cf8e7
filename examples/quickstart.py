"""Quickstart: a throwaway PostGIS cluster, a small geology schema, a spatial query.

Run it from the repository root with::

    uv run examples/quickstart.py

It needs the PostgreSQL server and PostGIS packages on this machine (Debian:
``apt-get install postgresql-15 postgresql-15-postgis-3``); no Docker and no
running server. The cluster lives in memory and is removed when the script ends.
"""

from __future__ import annotations

from macrostrat.dinosaur import create_migration, format_plan
from macrostrat.dinosaur.cluster import database_cluster

SCHEMA = """
CREATE SCHEMA geology;
CREATE TABLE geology.unit (
    id serial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    lithology text NOT NULL,
    age_ma numeric NOT NULL,
    geom geometry(Polygon, 4326) NOT NULL
);
CREATE TABLE geology.sample (
    id serial PRIMARY KEY,
    name text NOT NULL,
    geom geometry(Point, 4326) NOT NULL
);
CREATE INDEX ON geology.unit USING gist (geom);
"""

UNITS = [
    {"name": "Baraboo Quartzite", "lithology": "quartzite", "age": 1700,
     "wkt": "POLYGON((-89.9 43.4,-89.5 43.4,-89.5 43.6,-89.9 43.6,-89.9 43.4))"},
    {"name": "Tunnel City Group", "lithology": "sandstone", "age": 495,
     "wkt": "POLYGON((-90.4 43.7,-89.9 43.7,-89.9 44.1,-90.4 44.1,-90.4 43.7))"},
    {"name": "Sinnipee Group", "lithology": "dolomite", "age": 455,
     "wkt": "POLYGON((-89.5 42.9,-89.0 42.9,-89.0 43.3,-89.5 43.3,-89.5 42.9))"},
]  # fmt: skip

SAMPLES = [
    {"name": "BQ-1", "lon": -89.70, "lat": 43.50},
    {"name": "BQ-2", "lon": -89.60, "lat": 43.45},
    {"name": "TC-1", "lon": -90.10, "lat": 43.90},
    {"name": "SG-1", "lon": -89.20, "lat": 43.10},
    {"name": "X-9", "lon": -88.00, "lat": 45.00},  # outside every unit
]

# Version 2 of the schema: samples get a collector and a collection date.
SCHEMA_V2 = SCHEMA.replace(
    "    name text NOT NULL,\n    geom geometry(Point, 4326) NOT NULL",
    "    name text NOT NULL,\n    collector text,\n    collected_on date,\n"
    "    geom geometry(Point, 4326) NOT NULL",
)

QUERY = """
SELECT u.name, u.lithology, u.age_ma,
       round((ST_Area(u.geom::geography) / 1e6)::numeric) AS area_km2,
       count(s.id) AS samples
FROM geology.unit u
LEFT JOIN geology.sample s ON ST_Contains(u.geom, s.geom)
GROUP BY u.id
ORDER BY u.age_ma DESC
"""


def build_schema_v2(target) -> None:
    """The initializer: build the ideal schema in an empty database."""
    target.run_sql("CREATE EXTENSION IF NOT EXISTS postgis", raise_errors=True)
    target.run_sql(SCHEMA_V2, raise_errors=True)


def main() -> None:
    with database_cluster(backend="local", extensions=("postgis",)) as db:
        # Run a script (split into statements, each committed as psql would) ...
        db.run_sql(SCHEMA)
        # ... and statements with parameters: a list of dicts runs executemany.
        db.run_sql(
            "INSERT INTO geology.unit (name, lithology, age_ma, geom) "
            "VALUES (:name, :lithology, :age, ST_GeomFromText(:wkt, 4326))",
            UNITS,
        )
        db.run_sql(
            "INSERT INTO geology.sample (name, geom) "
            "VALUES (:name, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))",
            SAMPLES,
        )
        rows = db.run_query(QUERY).all()

        # Reflect the schema into ORM models (one automap base per Database).
        db.automap(schemas=["geology"])
        Unit = db.model.geology_unit
        oldest = db.session.query(Unit).order_by(Unit.age_ma.desc()).first()
        version = db.run_query("SELECT postgis_lib_version()").scalar()

        print(f"PostGIS {version}: units by age, with the samples inside each")
        print(
            f"{'unit':<20} {'lithology':<10} {'age (Ma)':>8} {'area km2':>9} "
            f"{'samples':>7}"
        )
        for name, lithology, age, area, samples in rows:
            print(f"{name:<20} {lithology:<10} {age:>8} {area:>9} {samples:>7}")
        print(f"Oldest unit (ORM model {Unit.__name__}): {oldest.name}")

        # Evolve the live schema to version 2 with dinosaur: plan, check, apply.
        # End our own read transaction first: its locks would make the
        # migration wait (and give up after lock_timeout, keeping nothing).
        db.session.commit()
        migration = create_migration(db, build_schema_v2)
        print("\nMigration plan (hazards as comments):")
        print(format_plan(migration.plan))
        assert migration.is_safe, "adding nullable columns destroys nothing"
        migration.apply(check_convergence=True)
        kept = db.run_query("SELECT count(*) FROM geology.sample").scalar()
        columns = db.run_query(
            "SELECT string_agg(column_name, ', ' ORDER BY ordinal_position) "
            "FROM information_schema.columns "
            "WHERE table_schema = 'geology' AND table_name = 'sample'"
        ).scalar()
        print(f"Applied; geology.sample now has ({columns}) and kept {kept} rows")


if __name__ == "__main__":
    main()
