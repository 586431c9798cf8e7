"""Privileges, default privileges and owners in migration plans (issue #18).

Each test diffs two real databases, applies the plan and compares what the
server then reports (``aclexplode`` of every object, the owners, the default
privileges) between the live database and the target, independently of the
code under test.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from macrostrat.dinosaur import (
    UnsafeMigrationError,
    check_convergence,
    create_migration,
)
from macrostrat.dinosaur.diff import conninfo, format_plan


def run(url: str, script: str) -> None:
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute(script)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def roles(database_url: str) -> Iterator[dict[str, str]]:
    """Roles of this module (unique names; dropped at the end).

    ``reader``, ``writer`` and ``owner`` cannot log in; ``builder`` can (with
    ``password``) and builds targets as another role than the live side's.
    """
    suffix = secrets.token_hex(3)
    names = {k: f"{k}_{suffix}" for k in ("reader", "writer", "owner", "builder")}
    password = secrets.token_hex(8)
    with psycopg.connect(conninfo(database_url), autocommit=True) as conn:
        for key, name in names.items():
            options = (
                sql.SQL("LOGIN PASSWORD {}").format(sql.Literal(password))
                if key == "builder"
                else sql.SQL("NOLOGIN")
            )
            conn.execute(
                sql.SQL("CREATE ROLE {} {}").format(sql.Identifier(name), options)
            )
        # the builder may make objects owned by the others (ALTER ... OWNER TO)
        conn.execute(
            sql.SQL("GRANT {} TO {}").format(
                sql.Identifier(names["owner"]), sql.Identifier(names["builder"])
            )
        )
    yield {**names, "password": password}
    with psycopg.connect(conninfo(database_url), autocommit=True) as conn:
        for name in reversed(list(names.values())):
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def acls(url: str, owner_token: bool = False) -> dict[str, object]:
    """What the server says of schema ``s``: privileges, owners, defaults.

    Privileges are ``(grantee, privilege, grantable)`` sets from
    ``aclexplode`` (the built-in ones when the catalog stores none), per
    object and per column; with ``owner_token`` the owner's name is replaced
    by ``<owner>``.
    """
    query = """
    WITH o AS (
      SELECT 'rel ' || c.relname AS obj, c.relowner AS own,
             coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner)) AS acl
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 's' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
      UNION ALL
      SELECT 'col ' || c.relname || '.' || a.attname, c.relowner, a.attacl
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 's' AND a.attacl IS NOT NULL AND NOT a.attisdropped
      UNION ALL
      SELECT 'fn ' || p.proname, p.proowner, coalesce(p.proacl, acldefault('f', p.proowner))
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 's'
      UNION ALL
      SELECT 'type ' || t.typname, t.typowner, coalesce(t.typacl, acldefault('T', t.typowner))
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
      WHERE n.nspname = 's' AND t.typtype IN ('e', 'd')
      UNION ALL
      SELECT 'schema', nspowner, coalesce(nspacl, acldefault('n', nspowner))
      FROM pg_namespace WHERE nspname = 's'
      UNION ALL
      SELECT 'default ' || coalesce(n.nspname, '*') || ' ' || d.defaclobjtype::text,
             d.defaclrole, d.defaclacl
      FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
    )
    SELECT obj, pg_get_userbyid(own),
           CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END,
           x.privilege_type, x.is_grantable
    FROM o LEFT JOIN LATERAL aclexplode(o.acl) x ON true
    """
    out: dict[str, object] = {}
    with psycopg.connect(conninfo(url)) as conn:
        for obj, owner, grantee, priv, grantable in conn.execute(query):
            entries = out.setdefault(obj, set())
            assert isinstance(entries, set)
            if grantee is not None:
                if owner_token and grantee == owner:
                    grantee = "<owner>"
                entries.add((grantee, priv, grantable))
            out[f"owner of {obj}"] = "<owner>" if owner_token else owner
    return out


def everything(r: dict[str, str]) -> str:
    """Objects of every kind in schema ``s`` with grants, column grants,
    revocations from PUBLIC, a stated owner and default privileges."""
    return f"""
    CREATE SCHEMA s;
    CREATE TABLE s.t (id int PRIMARY KEY, a text, b text);
    CREATE VIEW s.v AS SELECT id, a FROM s.t;
    CREATE MATERIALIZED VIEW s.m AS SELECT id FROM s.v;
    CREATE SEQUENCE s.q;
    CREATE FUNCTION s.f(x int) RETURNS int LANGUAGE sql AS 'select x';
    CREATE PROCEDURE s.p() LANGUAGE sql AS 'select 1';
    CREATE TYPE s.e AS ENUM ('a', 'b');
    CREATE DOMAIN s.d AS int CHECK (VALUE > 0);
    CREATE TYPE s.pair AS (x int, y int);
    CREATE TABLE s.serials (id serial, n int);
    GRANT USAGE ON SCHEMA s TO {r["reader"]};
    GRANT SELECT, INSERT ON s.t TO {r["writer"]};
    GRANT SELECT ON s.t TO {r["reader"]} WITH GRANT OPTION;
    GRANT UPDATE (a) ON s.t TO {r["writer"]};
    GRANT SELECT ON s.v, s.m TO {r["reader"]};
    GRANT USAGE ON SEQUENCE s.q TO {r["writer"]};
    REVOKE EXECUTE ON FUNCTION s.f(int) FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION s.f(int) TO {r["reader"]};
    GRANT EXECUTE ON PROCEDURE s.p() TO {r["writer"]};
    REVOKE USAGE ON TYPE s.e FROM PUBLIC;
    GRANT USAGE ON DOMAIN s.d TO {r["writer"]};
    ALTER TABLE s.t OWNER TO {r["owner"]};
    ALTER MATERIALIZED VIEW s.m OWNER TO {r["owner"]};
    ALTER TYPE s.pair OWNER TO {r["owner"]};
    ALTER FUNCTION s.f(int) OWNER TO {r["owner"]};
    ALTER TABLE s.serials OWNER TO {r["owner"]};
    GRANT USAGE ON SEQUENCE s.serials_id_seq TO {r["reader"]};
    ALTER DEFAULT PRIVILEGES IN SCHEMA s GRANT SELECT ON TABLES TO {r["reader"]};
    ALTER DEFAULT PRIVILEGES IN SCHEMA s REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
    """


def test_every_kind_of_grant_converges_from_empty(pair, roles) -> None:
    live, target = pair
    run(target, everything(roles))
    m = create_migration(live, target, privileges=True)
    text = format_plan(m.plan)
    assert "REVOKE EXECUTE ON FUNCTION s.f(x integer) FROM PUBLIC;" in text
    assert f'GRANT UPDATE ("a") ON TABLE s.t TO "{roles["writer"]}";' in text
    assert f'ALTER TABLE s.t OWNER TO "{roles["owner"]}";' in text
    assert f'ALTER FUNCTION s.f(x integer) OWNER TO "{roles["owner"]}";' in text
    # a sequence linked to a column follows its table's owner
    assert "ALTER SEQUENCE s.serials_id_seq OWNER" not in text
    assert "WITH GRANT OPTION" in text
    assert {h.value for p in m.plan for h in p.unsafe_hazards()} == {"AUTHZ_UPDATE"}
    m.apply(allow_hazards=["AUTHZ_UPDATE"], check_convergence=True)
    check_convergence(live, target, privileges=True)
    assert acls(live) == acls(target)


def test_changed_grants_are_revoked_and_granted(pair, roles) -> None:
    live, target = pair
    run(target, everything(roles))
    run(live, everything(roles))
    r = roles
    run(
        live,
        f"""
        GRANT DELETE ON s.t TO {r["writer"]};
        GRANT SELECT ON s.t TO {r["writer"]} WITH GRANT OPTION;
        REVOKE GRANT OPTION FOR SELECT ON s.t FROM {r["reader"]};
        REVOKE UPDATE (a) ON s.t FROM {r["writer"]};
        GRANT SELECT (b) ON s.t TO {r["reader"]};
        GRANT EXECUTE ON FUNCTION s.f(int) TO PUBLIC;
        REVOKE USAGE ON SCHEMA s FROM {r["reader"]};
        ALTER DEFAULT PRIVILEGES IN SCHEMA s GRANT INSERT ON TABLES TO {r["writer"]};
        ALTER DEFAULT PRIVILEGES IN SCHEMA s REVOKE SELECT ON TABLES FROM {r["reader"]};
        """,
    )
    before = acls(live)
    assert before != acls(target)
    m = create_migration(live, target, privileges=True)
    assert len(m.statements) >= 8
    with pytest.raises(UnsafeMigrationError) as refused:
        m.apply()
    assert refused.value.hazards == ["AUTHZ_UPDATE"]
    assert acls(live) == before  # nothing ran
    m.apply(allow_hazards=["AUTHZ_UPDATE"], check_convergence=True)
    assert acls(live) == acls(target)


def test_without_privileges_grants_are_not_planned(pair, roles) -> None:
    """The upstream default: ``create_migration`` leaves grants alone."""
    live, target = pair
    run(target, everything(roles))
    run(live, everything(roles))
    run(live, f"GRANT DELETE ON s.t TO {roles['writer']}")
    assert create_migration(live, target).statements == []
    assert create_migration(live, target, privileges=True).statements


def test_new_objects_shed_the_live_default_privileges(pair, roles) -> None:
    """A table the plan creates gets the live database's default privileges;
    the plan takes away those the target does not have."""
    live, target = pair
    r = roles
    run(live, "CREATE SCHEMA s")
    run(
        live,
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA s GRANT SELECT, DELETE ON TABLES TO {r['writer']}",
    )
    run(
        target,
        f"""
        CREATE SCHEMA s;
        ALTER DEFAULT PRIVILEGES IN SCHEMA s GRANT SELECT ON TABLES TO {r["writer"]};
        CREATE TABLE s.fresh (id int);
        CREATE FUNCTION s.g() RETURNS int LANGUAGE sql AS 'select 1';
        """,
    )
    m = create_migration(live, target, privileges=True)
    text = format_plan(m.plan)
    # the new table's SELECT comes from the default privileges: not granted again
    assert f'GRANT SELECT ON TABLE s.fresh TO "{r["writer"]}"' not in text
    m.apply(allow_hazards=["AUTHZ_UPDATE"], check_convergence=True)
    assert acls(live) == acls(target)


VIEWS = """
CREATE SCHEMA s;
CREATE TABLE s.t (id int PRIMARY KEY, a text, b text);
INSERT INTO s.t VALUES (1, 'x', 'y');
CREATE VIEW s.v1 AS SELECT id, a FROM s.t;
CREATE VIEW s.v2 AS SELECT id, a FROM s.v1;
CREATE MATERIALIZED VIEW s.m AS SELECT id, a FROM s.v2;
GRANT SELECT ON s.v1, s.v2 TO {reader};
GRANT SELECT (id) ON s.m TO {writer};
GRANT SELECT ON s.m TO {reader} WITH GRANT OPTION;
ALTER VIEW s.v2 OWNER TO {owner};
"""


def test_recreated_view_chain_keeps_its_grants_and_owners(pair, roles) -> None:
    """A view whose columns change is dropped and created again with the views
    on it; without managing privileges, each gets back what it had, and
    giving it back carries no hazard."""
    live, target = pair
    run(live, VIEWS.format(**roles))
    run(
        target,
        VIEWS.format(**roles).replace(
            "v1 AS SELECT id, a FROM s.t", "v1 AS SELECT id, b, a FROM s.t"
        ),
    )
    before = acls(live)
    m = create_migration(live, target)
    text = format_plan(m.plan)
    assert 'drop view if exists "s"."v1"' in text
    assert f'ALTER VIEW s.v2 OWNER TO "{roles["owner"]}";' in text
    assert m.is_safe, text
    m.apply(check_convergence=True)
    assert acls(live) == before
    with psycopg.connect(conninfo(live)) as conn:
        assert conn.execute("SELECT id, a FROM s.m").fetchall() == [(1, "x")]


def test_recreated_view_takes_the_target_grants_when_managed(pair, roles) -> None:
    live, target = pair
    run(live, VIEWS.format(**roles))
    changed = VIEWS.format(**roles).replace(
        "v1 AS SELECT id, a FROM s.t", "v1 AS SELECT id, b, a FROM s.t"
    )
    run(target, changed + f"REVOKE SELECT ON s.v2 FROM {roles['reader']};")
    m = create_migration(live, target, privileges=True)
    m.apply(allow_hazards=["AUTHZ_UPDATE"], check_convergence=True)
    assert acls(live) == acls(target)


def test_owners_are_enforced_only_where_the_target_states_them(
    pair, roles, database_url: str
) -> None:
    """A target built by another role (as in a throwaway cluster): objects
    that role owns have no stated owner, so the live owners stay; an owner
    the target states is given; the builder's grants become the live role's."""
    live, target = pair
    r = roles
    run(live, "CREATE SCHEMA s; CREATE TABLE s.t (id int); CREATE TABLE s.u (id int)")
    run(live, f"ALTER TABLE s.t OWNER TO {r['owner']}")
    run(target, f"ALTER DATABASE {target.rsplit('/', 1)[1]} OWNER TO {r['builder']}")
    # the target is built and read as the builder: the role it is read as
    # stands for whoever applies the plan
    as_builder = (
        make_url(target)
        .set(username=r["builder"], password=r["password"])
        .render_as_string(hide_password=False)
    )
    with psycopg.connect(conninfo(as_builder), autocommit=True) as conn:
        conn.execute(
            f"""
            CREATE SCHEMA s;
            CREATE TABLE s.t (id int);
            CREATE TABLE s.u (id int);
            CREATE TABLE s.w (id int);
            GRANT SELECT ON s.t TO {r["reader"]};
            GRANT CREATE ON SCHEMA s TO {r["owner"]};  -- a new owner needs it
            ALTER TABLE s.u OWNER TO {r["owner"]};
            """
        )
    m = create_migration(live, as_builder, privileges=True)
    text = format_plan(m.plan)
    assert "ALTER TABLE s.t OWNER" not in text  # the builder's: not stated
    assert "ALTER TABLE s.w OWNER" not in text
    assert f'ALTER TABLE s.u OWNER TO "{r["owner"]}";' in text
    assert r["builder"] not in text
    m.apply(allow_hazards=["AUTHZ_UPDATE"], check_convergence=True)
    with psycopg.connect(conninfo(live)) as conn:
        owners = dict(
            conn.execute(
                "SELECT relname, pg_get_userbyid(relowner) FROM pg_class "
                "WHERE relnamespace = 's'::regnamespace"
            ).fetchall()
        )
        me = conn.execute("SELECT current_user").fetchone()[0]  # type: ignore[index]
    assert owners == {"t": r["owner"], "u": r["owner"], "w": me}
    # privileges compare as the owner's, whoever owns
    assert acls(live, owner_token=True) == acls(target, owner_token=True)


def test_schema_filter_limits_the_privileges_planned(pair, roles) -> None:
    live, target = pair
    run(live, "CREATE SCHEMA s; CREATE SCHEMA o; CREATE TABLE o.x (id int)")
    run(
        target,
        "CREATE SCHEMA s; CREATE SCHEMA o; CREATE TABLE o.x (id int);"
        f"GRANT SELECT ON o.x TO {roles['reader']};"
        f"GRANT USAGE ON SCHEMA s TO {roles['reader']};"
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA o GRANT SELECT ON TABLES TO {roles['reader']};"
        f"ALTER DEFAULT PRIVILEGES GRANT USAGE ON TYPES TO {roles['writer']};",
    )
    only_s = create_migration(live, target, privileges=True, schema="s").statements
    assert only_s == [f'GRANT USAGE ON SCHEMA s TO "{roles["reader"]}";']
    not_s = create_migration(
        live, target, privileges=True, exclude_schema="s"
    ).statements
    assert len(not_s) == 3
    assert not any("SCHEMA s " in st for st in not_s)


# -- objects the plan re-creates or changes under the privileges ----------------


def test_recreated_enum_gets_its_owner_and_grants_back(pair, roles) -> None:
    """An enum losing a value is renamed away and created again."""
    live, target = pair
    r = roles
    grants = f"""
    REVOKE USAGE ON TYPE s.e FROM PUBLIC;
    GRANT USAGE ON TYPE s.e TO {r["reader"]};
    ALTER TYPE s.e OWNER TO {r["owner"]};
    """
    run(live, "CREATE SCHEMA s; CREATE TYPE s.e AS ENUM ('a', 'b', 'c');" + grants)
    run(target, "CREATE SCHEMA s; CREATE TYPE s.e AS ENUM ('a', 'b');" + grants)
    before = acls(live)
    m = create_migration(live, target)
    m.apply(allow_hazards=["REWRITES_DATA"], check_convergence=True)
    assert acls(live) == before
    check_convergence(live, target, privileges=True)


def test_recreated_view_keeps_its_owner_when_privileges_are_managed(
    pair, roles
) -> None:
    """The target states no owner (its builder's): the live owner stays."""
    live, target = pair
    run(live, VIEWS.format(**roles))
    changed = VIEWS.format(**roles).replace(
        "v1 AS SELECT id, a FROM s.t", "v1 AS SELECT id, b, a FROM s.t"
    )
    run(target, changed.replace(f"ALTER VIEW s.v2 OWNER TO {roles['owner']};", ""))
    m = create_migration(live, target, privileges=True)
    m.apply(allow_hazards=["AUTHZ_UPDATE"], check_convergence=True)
    owners = acls(live)
    assert owners["owner of rel v2"] == roles["owner"]


def test_a_new_owner_keeps_what_it_was_granted(pair, roles) -> None:
    """PostgreSQL merges the new owner's grants into its own privileges."""
    live, target = pair
    r = roles
    run(
        live,
        f"CREATE SCHEMA s; CREATE TABLE s.t (id int); GRANT SELECT ON s.t TO {r['owner']}",
    )
    run(
        target,
        f"CREATE SCHEMA s; CREATE TABLE s.t (id int); ALTER TABLE s.t OWNER TO {r['owner']}",
    )
    m = create_migration(live, target, privileges=True)
    assert not any(s.startswith("REVOKE") for s in m.statements), m.statements
    m.apply(allow_hazards=["AUTHZ_UPDATE"], check_convergence=True)
    assert acls(live) == acls(target)


def test_dropped_column_takes_its_grants_with_it(pair, roles) -> None:
    live, target = pair
    r = roles
    run(
        live,
        f"CREATE SCHEMA s; CREATE TABLE s.t (id int, b int); GRANT SELECT (b) ON s.t TO {r['reader']}",
    )
    run(target, "CREATE SCHEMA s; CREATE TABLE s.t (id int)")
    m = create_migration(live, target, privileges=True)
    assert not any('("b")' in s for s in m.statements if s.startswith("REVOKE"))
    m.apply(allow_hazards=["DELETES_DATA", "AUTHZ_UPDATE"], check_convergence=True)


def test_table_revoke_keeps_the_column_grants_the_target_has(pair, roles) -> None:
    """REVOKE on a table also revokes the column privileges: they are given back."""
    live, target = pair
    r = roles
    run(
        live,
        f"CREATE SCHEMA s; CREATE TABLE s.t (id int, a int);"
        f"GRANT SELECT ON s.t TO {r['reader']}; GRANT SELECT (a) ON s.t TO {r['reader']}",
    )
    run(
        target,
        f"CREATE SCHEMA s; CREATE TABLE s.t (id int, a int);"
        f"GRANT SELECT (a) ON s.t TO {r['reader']}",
    )
    m = create_migration(live, target, privileges=True)
    m.apply(allow_hazards=["AUTHZ_UPDATE"], check_convergence=True)
    assert acls(live) == acls(target)


def test_function_with_renamed_parameter_keeps_its_privileges(pair, roles) -> None:
    """f(x int) becoming f(y int) is dropped and created: the same function."""
    live, target = pair
    r = roles
    grants = f"""
    REVOKE EXECUTE ON FUNCTION s.f(int) FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION s.f(int) TO {r["reader"]};
    ALTER FUNCTION s.f(int) OWNER TO {r["owner"]};
    """
    fn = "CREATE FUNCTION s.f({arg} int) RETURNS int LANGUAGE sql AS 'select 1';"
    run(live, "CREATE SCHEMA s;" + fn.format(arg="x") + grants)
    run(target, "CREATE SCHEMA s;" + fn.format(arg="y") + grants)
    before = acls(live)
    m = create_migration(live, target)
    m.apply(check_convergence=True)
    assert acls(live) == before


def test_sequence_of_a_recreated_table_keeps_its_grants(pair, roles) -> None:
    """A table turned into a partitioned one takes its identity sequence along."""
    live, target = pair
    r = roles
    table = "CREATE SCHEMA s; CREATE TABLE s.p (id int GENERATED ALWAYS AS IDENTITY, k int){};"
    grants = f"GRANT USAGE ON SEQUENCE s.p_id_seq TO {r['writer']};"
    run(live, table.format("") + grants)
    run(target, table.format(" PARTITION BY RANGE (k)") + grants)
    m = create_migration(live, target)
    drop = next(p for p in m.plan if p.sql.lower().startswith("drop table"))
    # the new table is empty: dropping the old one deletes its rows
    assert [h.value for h in drop.hazards] == ["DELETES_DATA"]
    m.apply(allow_hazards=["DELETES_DATA"], check_convergence=True)
    check_convergence(live, target, privileges=True)


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER MATERIALIZED VIEW s.m OWNER TO x;",
        "ALTER PROCEDURE s.p() OWNER TO x;",
        "ALTER AGGREGATE s.a(int) OWNER TO x;",
        "ALTER FOREIGN TABLE s.f OWNER TO x;",
        "ALTER ROUTINE s.r() OWNER TO x;",
        "ALTER TABLE s.t OWNER TO x;",
        "ALTER VIEW s.v OWNER TO x;",
    ],
)
def test_every_owner_change_is_an_authz_update(statement: str) -> None:
    from macrostrat.dinosaur.hazards import classify_statements

    (planned,) = classify_statements([statement])
    assert [h.value for h in planned.hazards] == ["AUTHZ_UPDATE"]


@pytest.mark.parametrize("managed", [False, True])
def test_a_column_dropped_and_added_again_gets_its_grants_back(
    pair, roles, managed: bool
) -> None:
    """A generated column whose expression changes is dropped and added again."""
    live, target = pair
    table = "CREATE SCHEMA s; CREATE TABLE s.t (id int, a int, g int GENERATED ALWAYS AS (a * {}) STORED);"
    grant = f"GRANT SELECT (g) ON s.t TO {roles['reader']};"
    run(live, table.format(2) + grant)
    run(target, table.format(3) + grant)
    before = acls(live)
    m = create_migration(live, target, privileges=managed)
    unsafe = sorted({h.value for p in m.plan for h in p.unsafe_hazards()})
    assert "AUTHZ_UPDATE" not in unsafe  # giving it back changes nothing
    m.apply(allow_hazards=unsafe, check_convergence=True)
    assert acls(live) == before
