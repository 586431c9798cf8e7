"""Owners, privileges and default privileges as the catalogs hold them.

`read_privileges` reads, on a short-lived connection in one rolled-back
transaction, every object that has an owner and privileges (schemas,
relations, sequences, functions, procedures, aggregates, types, domains), the
column privileges and ``pg_default_acl``, with the privileges a new object
gets by default.  Privileges are ``(grantee, privilege, grantable)`` entries
(`Entry`) where the object's owner is `OWNER` and everyone is `PUBLIC`, so
that two databases whose objects have different owners compare.  Planning the
changes is `macrostrat.dinosaur._privileges`.

The ``public`` schema's own privileges and owner are left out (every cluster
makes that schema itself, differently across versions), and so are objects
that belong to extensions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

__all__ = [
    "ACLDEFAULT_KINDS",
    "DEFAULT_NOUNS",
    "OWNER",
    "PUBLIC",
    "Entry",
    "PrivilegeState",
    "SecuredObject",
    "read_privileges",
]

OWNER = "\x00owner"
"""Grantee token: the object's owner, whoever it is."""

PUBLIC = "PUBLIC"

Entry = tuple[str, str, bool]
"""``(grantee, privilege, grantable)``; grantee is a role name, `OWNER` or `PUBLIC`."""


_SYSTEM = (
    "('pg_catalog', 'information_schema', 'pg_toast')"
    " AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'"
)

_NOT_EXTENSION = """NOT EXISTS (SELECT FROM pg_depend e WHERE e.classid = {cat}::regclass
                  AND e.objid = {oid} AND e.deptype = 'e')"""

# Every object that has privileges and an owner: key, kind (for GRANT/ALTER),
# schema, quoted name, owner, whether ALTER … OWNER is allowed on its own
# (not for sequences linked to a column), the default-privilege object type
# and the ACL (the built-in one when the catalog stores NULL).
_OBJECTS = f"""
WITH objs AS (
SELECT 'rel:' || n.nspname || '.' || c.relname AS key,
       'rel:' || n.nspname || '.' || c.relname AS match,
       CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
            WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE'
            ELSE 'TABLE' END AS kind,
       n.nspname AS schema, format('%I.%I', n.nspname, c.relname) AS ident,
       c.relowner AS owner,
       NOT (c.relkind = 'S' AND EXISTS (
            SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
            AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass
            AND d.deptype IN ('a', 'i'))) AS movable,
       CASE WHEN c.relkind = 'S' THEN 'S' ELSE 'r' END AS defkind,
       coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char",
                                     c.relowner)) AS acl
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND n.nspname NOT IN {_SYSTEM}
  AND {_NOT_EXTENSION.format(cat="'pg_class'", oid="c.oid")}
UNION ALL
SELECT 'function:' || n.nspname || '.' || p.proname || '('
       || pg_get_function_identity_arguments(p.oid) || ')',
       'function:' || n.nspname || '.' || p.proname || '('
       || oidvectortypes(p.proargtypes) || ')',
       CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
       n.nspname,
       format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)),
       p.proowner, true, 'f', coalesce(p.proacl, acldefault('f', p.proowner))
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname NOT IN {_SYSTEM} AND p.prokind <> 'a'
  AND {_NOT_EXTENSION.format(cat="'pg_proc'", oid="p.oid")}
UNION ALL
SELECT 'type:' || n.nspname || '.' || t.typname,
       'type:' || n.nspname || '.' || t.typname,
       CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
       n.nspname, format('%I.%I', n.nspname, t.typname), t.typowner, true, 'T',
       coalesce(t.typacl, acldefault('T', t.typowner))
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname NOT IN {_SYSTEM} AND t.typtype IN ('b', 'c', 'd', 'e', 'r')
  AND NOT (t.typcategory = 'A' AND t.typelem <> 0)
  AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
  AND {_NOT_EXTENSION.format(cat="'pg_type'", oid="t.oid")}
UNION ALL
SELECT 'schema:' || n.nspname, 'schema:' || n.nspname, 'SCHEMA', n.nspname, format('%I', n.nspname),
       n.nspowner, true, 'n', coalesce(n.nspacl, acldefault('n', n.nspowner))
FROM pg_namespace n
WHERE n.nspname NOT IN {_SYSTEM} AND n.nspname <> 'public'
  AND {_NOT_EXTENSION.format(cat="'pg_namespace'", oid="n.oid")}
)
SELECT o.key, o.match, o.kind, o.schema, o.ident, pg_get_userbyid(o.owner), o.movable, o.defkind,
       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
       a.privilege_type, a.is_grantable
FROM objs o LEFT JOIN LATERAL aclexplode(o.acl) a ON true
"""

_COLUMNS = f"""
SELECT 'rel:' || n.nspname || '.' || c.relname, a.attname,
       CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END,
       x.privilege_type, x.is_grantable
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace,
LATERAL aclexplode(a.attacl) x
WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname NOT IN {_SYSTEM}
"""

_COLUMN_NAMES = f"""
SELECT 'rel:' || n.nspname || '.' || c.relname, array_agg(a.attname::text)
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE a.attnum > 0 AND NOT a.attisdropped
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname NOT IN {_SYSTEM}
GROUP BY 1
"""

_DEFAULTS = """
SELECT pg_get_userbyid(d.defaclrole), n.nspname, d.defaclobjtype,
       CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END,
       x.privilege_type, x.is_grantable
FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
LEFT JOIN LATERAL aclexplode(d.defaclacl) x ON true
"""

# acldefault's letter for each default-privilege object type
ACLDEFAULT_KINDS = {"r": "r", "S": "s", "f": "f", "T": "T", "n": "n"}
DEFAULT_NOUNS = {
    "r": "TABLES",
    "S": "SEQUENCES",
    "f": "FUNCTIONS",
    "T": "TYPES",
    "n": "SCHEMAS",
}

_BUILTIN = """
SELECT k, CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END,
       x.privilege_type, x.is_grantable
FROM unnest(array['r', 's', 'f', 'T', 'n']) k,
LATERAL aclexplode(acldefault(k::"char", (SELECT oid FROM pg_roles WHERE rolname = current_user))) x
"""


@dataclass
class SecuredObject:
    """An object with an owner and privileges.

    Attributes:
        key: its object key (``rel:schema.name``, ``function:…(args)``,
            ``type:…``, ``schema:name``), as `macrostrat.dinosaur._depends`
            spells it (a function's arguments with their names).
        match: what identifies it across databases (a function by its
            argument types only: renaming a parameter re-creates the same
            function).
        kind: the keyword ``GRANT``/``ALTER`` use (``TABLE``, ``VIEW``…).
        schema: its schema (a schema's own name).
        ident: its quoted name (functions with their argument types).
        owner: its owner.
        movable: False when its owner cannot be changed on its own (a
            sequence linked to a column follows its table).
        defkind: its default-privilege object type (``r``, ``S``, ``f``,
            ``T``, ``n``).
        acl: its privileges, the owner's as `OWNER`.
        columns: column privileges by column name, the owner's as `OWNER`.
        column_names: every column of a relation (None for other objects).
    """

    key: str
    match: str
    kind: str
    schema: str
    ident: str
    owner: str
    movable: bool
    defkind: str
    acl: set[Entry] = field(default_factory=set)
    columns: dict[str, set[Entry]] = field(default_factory=dict)
    column_names: set[str] | None = None


@dataclass
class PrivilegeState:
    """Owners, privileges and default privileges of one database.

    Attributes:
        role: the role it was read as (``current_user``).
        objects: every object with privileges, by key.
        defaults: ``pg_default_acl`` by ``(role, schema or None, object
            type)``; the role's own entries as `OWNER`.
        builtin: the built-in privileges of a new object owned by ``role``,
            by ``acldefault`` letter, the owner's as `OWNER`.
        schemas: the name of every schema (``public`` included).
    """

    role: str = ""
    objects: dict[str, SecuredObject] = field(default_factory=dict)
    defaults: dict[tuple[str, str | None, str], set[Entry]] = field(
        default_factory=dict
    )
    builtin: dict[str, set[Entry]] = field(default_factory=dict)
    schemas: set[str] = field(default_factory=set)
    _by_match: dict[str, SecuredObject] | None = field(default=None, repr=False)

    def matching(self, other: SecuredObject) -> SecuredObject | None:
        """The object here that is ``other`` (from another database), or None."""
        if self._by_match is None:
            self._by_match = {o.match: o for o in self.objects.values()}
        return self._by_match.get(other.match)

    def default_acl(self, role: str, schema: str | None, defkind: str) -> set[Entry]:
        """The default privileges of ``role``'s new objects of ``defkind``.

        A global entry replaces the built-in privileges; a schema's entry adds
        to them, as PostgreSQL does when it creates an object.
        """
        base = self.defaults.get((role, None, defkind))
        if base is None:
            base = self.builtin.get(ACLDEFAULT_KINDS[defkind], set())
        extra = self.defaults.get((role, schema, defkind), set()) if schema else set()
        return set(base) | set(extra)

    def initial_acl(self, obj: SecuredObject) -> set[Entry]:
        """The privileges ``obj`` gets when `role` creates it here."""
        schema = None if obj.kind == "SCHEMA" else obj.schema
        return self.default_acl(self.role, schema, obj.defkind)


def read_privileges(source: str | psycopg.Connection[Any]) -> PrivilegeState:
    """Read owners, privileges and default privileges of one database.

    Given a connection string, the catalogs are read on a new connection in
    one transaction, rolled back and closed before returning; given an open
    connection, in that connection's transaction, which is left to the
    caller.

    Parameters:
        source: a libpq connection string, or an open psycopg connection.
    """
    if not isinstance(source, str):
        return _read(source)
    with psycopg.connect(source) as conn:
        try:
            return _read(conn)
        finally:
            conn.rollback()


def _token(grantee: str, owner: str) -> str:
    return OWNER if grantee == owner else grantee


def _read(conn: psycopg.Connection[Any]) -> PrivilegeState:
    row = conn.execute("SELECT current_user").fetchone()
    assert row is not None
    state = PrivilegeState(role=str(row[0]))
    for row in conn.execute(_OBJECTS):
        key, match, kind, schema, ident, owner, movable, defkind = row[:8]
        grantee, priv, grantable = row[8:]
        obj = state.objects.get(key)
        if obj is None:
            obj = state.objects[key] = SecuredObject(
                key, match, kind, schema, ident, owner, bool(movable), defkind
            )
        if grantee is not None:
            obj.acl.add((_token(grantee, owner), priv, bool(grantable)))
    for key, column, grantee, priv, grantable in conn.execute(_COLUMNS):
        obj = state.objects.get(key)
        if obj is not None:
            entries = obj.columns.setdefault(column, set())
            entries.add((_token(grantee, obj.owner), priv, bool(grantable)))
    for key, names in conn.execute(_COLUMN_NAMES):
        obj = state.objects.get(key)
        if obj is not None:
            obj.column_names = set(names)
    for role, schema, objtype, grantee, priv, grantable in conn.execute(_DEFAULTS):
        entries = state.defaults.setdefault((role, schema, objtype), set())
        if grantee is not None:
            entries.add((_token(grantee, role), priv, bool(grantable)))
    state.schemas = {
        str(r[0]) for r in conn.execute("SELECT nspname FROM pg_namespace")
    }
    for kind, grantee, priv, grantable in conn.execute(_BUILTIN):
        entries = state.builtin.setdefault(kind, set())
        entries.add((_token(grantee, state.role), priv, bool(grantable)))
    return state
