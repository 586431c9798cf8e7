-- The ideal schema of the demo database (used by `demo-app db migrate`).
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE SCHEMA IF NOT EXISTS demo;

CREATE TABLE demo.site (
    id serial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    geom geometry(Point, 4326) NOT NULL
);
