"""Privileges, default privileges and owners: reading them and planning the changes.

``results`` diffs only the table grants it can see through
``information_schema`` (and none on views, sequences, functions, types or
schemas); it knows nothing of default privileges or owners.  With what
`macrostrat.dinosaur._acls.read_privileges` reads from both catalogs, this
module plans the statements that bring the live database's to the target's
(`privilege_statements`):

- ``GRANT``/``REVOKE`` (with ``GRANT OPTION``) on schemas, tables, views,
  materialized views, foreign tables, sequences, functions, procedures,
  types and domains, and on columns (not aggregates, which ``results``
  does not plan);
- ``ALTER DEFAULT PRIVILEGES`` (global and per schema, for any role);
- ``ALTER … OWNER TO`` for owners the target *states*.

**Roles across databases.**  The target is often built by another role (a
throwaway cluster's superuser) than the one that applies the plan.  Each side
records the role it was read as (``current_user``); on the target side that
role stands for the applying role, wherever it appears.  An object the target
gives to that role has no stated owner: the live object's owner is left alone
(and a new object belongs to whoever applies the plan).  Any other target owner
is stated and enforced.  Privileges held by an object's owner are compared as
the owner's, whoever that is.

**Objects the plan creates or re-creates** start from the privileges
PostgreSQL gives them (``PrivilegeState.initial_acl``: the built-in defaults,
replaced or extended by the applying role's default privileges), so only the
differences from those are planned.  When privileges are not managed, a plan
that drops and re-creates an object (a view whose columns change, with its
dependent chain) still gives it back its owner and grants: those statements are
*restoring* ones, which carry no hazard.

The ``public`` schema's own privileges and owner and the objects of
extensions are left out.  Roles are cluster-wide and are never created: a
grant to a role the live server lacks fails when the plan is applied.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from psycopg import sql

from ._acls import (
    ACLDEFAULT_KINDS,
    DEFAULT_NOUNS,
    OWNER,
    PUBLIC,
    Entry,
    PrivilegeState,
    SecuredObject,
)
from ._depends import in_scope

__all__ = ["PrivilegeChanges", "privilege_statements"]


# -- planning ------------------------------------------------------------------

Change = tuple[str, str, str, bool]
"""``(verb, privilege, grantee, grant option)``; verb is ``GRANT``, ``REVOKE``
or ``REVOKE GRANT OPTION FOR``."""


@dataclass
class PrivilegeChanges:
    """The privilege statements of a plan.

    Attributes:
        statements: in the order they run: owners, revocations, grants,
            default privileges.
        restoring: those that give a re-created object back what the live
            one had (they carry no hazard).
    """

    statements: list[str] = field(default_factory=list)
    restoring: set[str] = field(default_factory=set)


def _acl_changes(have: set[Entry], want: set[Entry]) -> list[Change]:
    """The revocations, then the grants, that turn ``have`` into ``want``.

    Privileges given to or taken from one grantee in the same way are one
    change (``GRANT INSERT, SELECT ON … TO r``).
    """
    have_map = {(g, p): o for g, p, o in have}
    want_map = {(g, p): o for g, p, o in want}
    grouped: dict[tuple[int, str, str, bool], list[str]] = {}

    def put(order: int, verb: str, grantee: str, option: bool, priv: str) -> None:
        grouped.setdefault((order, verb, grantee, option), []).append(priv)

    for (g, p), option in have_map.items():
        if (g, p) not in want_map:
            put(0, "REVOKE", g, False, p)
        elif option and not want_map[(g, p)]:
            put(1, "REVOKE GRANT OPTION FOR", g, False, p)
    for (g, p), option in want_map.items():
        if (g, p) not in have_map or (option and not have_map[(g, p)]):
            put(2, "GRANT", g, option, p)
    return [
        (verb, ", ".join(sorted(privs)), grantee, option)
        for (_, verb, grantee, option), privs in sorted(grouped.items())
    ]


def _grantee(name: str, owner: str) -> sql.Composable:
    if name == OWNER:
        return sql.Identifier(owner)
    if name == PUBLIC:
        return sql.SQL("PUBLIC")
    return sql.Identifier(name)


def _change_sql(
    head: sql.Composable, change: Change, what: sql.Composable, owner: str
) -> str:
    """``{head} {verb} {privilege} ON {what} TO|FROM {grantee}``.

    ``head`` is empty for object privileges, ``ALTER DEFAULT PRIVILEGES …``
    for default ones; the `OWNER` grantee is named ``owner``.
    """
    verb, privilege, grantee, option = change
    text = sql.SQL("{}{} {} ON {} {} {}").format(
        head,
        sql.SQL(verb),
        sql.SQL(privilege),
        what,
        sql.SQL("TO" if verb == "GRANT" else "FROM"),
        _grantee(grantee, owner),
    )
    if option:
        text = sql.SQL("{} WITH GRANT OPTION").format(text)
    return text.as_string(None) + ";"


def _object_noun(obj: SecuredObject) -> str:
    """The keyword naming ``obj`` in ``GRANT … ON``."""
    if obj.kind in ("VIEW", "MATERIALIZED VIEW", "FOREIGN TABLE"):
        return "TABLE"
    return obj.kind


@dataclass
class _Planner:
    source: PrivilegeState
    target: PrivilegeState
    dropped: set[str]
    manage: bool
    out: PrivilegeChanges = field(default_factory=PrivilegeChanges)
    owners: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)

    def mapped(self, name: str) -> str:
        """A target-side role name as the live side knows it."""
        return self.source.role if name == self.target.role else name

    def mapped_acl(self, entries: Iterable[Entry]) -> set[Entry]:
        return {(self.mapped(g), p, o) for g, p, o in entries}

    def add(self, statements: list[str], *, restoring: bool, to: list[str]) -> None:
        to += statements
        if restoring:
            self.out.restoring.update(statements)

    def plan_object(self, want: SecuredObject) -> None:
        live = self.source.matching(want)
        recreated = live is not None and (
            live.key in self.dropped or want.key in self.dropped
        )
        # columns the plan drops and adds again: they start without privileges
        redone = (
            {
                c
                for c in want.column_names or ()
                if f"column:{live.key[4:]}.{c}" in self.dropped
            }
            if live is not None and not recreated and live.key.startswith("rel:")
            else set()
        )
        if not self.manage and not recreated and not redone:
            return
        fresh = live is None or recreated
        # owner and privileges right now (a fresh object: as it is created)
        owner = self.source.role if fresh or live is None else live.owner
        have = (
            self.source.initial_acl(live or want)
            if fresh or live is None
            else set(live.acl)
        )
        have_columns = {} if fresh or live is None else dict(live.columns)
        for column in redone:
            have_columns.pop(column, None)
        # the owner to give: the target's, when it states one; else a
        # re-created object's live owner (kept); else none (left alone)
        kept = (
            live.owner
            if recreated and live is not None and live.owner != self.source.role
            else None
        )
        if self.manage:
            stated = want.owner if want.owner != self.target.role else kept
            want_acl = self.mapped_acl(want.acl)
            want_columns = {c: self.mapped_acl(e) for c, e in want.columns.items()}
        else:  # give a re-created object back the live one's owner and grants
            assert live is not None
            stated = kept
            want_acl, want_columns = set(live.acl), dict(live.columns)
        restores = (
            recreated
            and live is not None
            and (stated or self.source.role) == live.owner
            and want_acl == live.acl
            and want_columns == live.columns
        )
        if stated is not None and stated != owner and want.movable:
            statement = (
                sql.SQL("ALTER {} {} OWNER TO {}")
                .format(sql.SQL(want.kind), sql.SQL(want.ident), sql.Identifier(stated))
                .as_string(None)
                + ";"
            )
            self.add([statement], restoring=restores, to=self.owners)
            # PostgreSQL merges what the new owner held into the owner's own
            have = _as_owner(have, stated)
            have_columns = {c: _as_owner(e, stated) for c, e in have_columns.items()}
            owner = stated
        what = sql.SQL("{} {}").format(sql.SQL(_object_noun(want)), sql.SQL(want.ident))
        statements = [
            _change_sql(sql.SQL(""), c, what, owner)
            for c in _acl_changes(have, want_acl)
        ]
        have_columns = _after_table_revokes(have_columns, have, want_acl)
        for column in sorted(set(have_columns) | set(want_columns)):
            if want.column_names is not None and column not in want.column_names:
                continue  # a column the plan drops takes its privileges with it
            col = sql.Identifier(column).as_string(None)
            given_back = (
                column in redone
                and live is not None
                and want_columns.get(column, set()) == live.columns.get(column, set())
            )
            column_statements = []
            for verb, privs, grantee, option in _acl_changes(
                have_columns.get(column, set()), want_columns.get(column, set())
            ):
                privilege = ", ".join(f"{p} ({col})" for p in privs.split(", "))
                change = (verb, privilege, grantee, option)
                column_statements.append(_change_sql(sql.SQL(""), change, what, owner))
            if given_back:
                self.out.restoring.update(column_statements)
            statements += column_statements
        self.add(statements, restoring=restores, to=self.changes)


def _as_owner(entries: set[Entry], new_owner: str) -> set[Entry]:
    """``entries`` once ``new_owner`` owns the object: its entries are the owner's."""
    merged: dict[tuple[str, str], bool] = {}
    for grantee, privilege, option in entries:
        key = (OWNER if grantee == new_owner else grantee, privilege)
        merged[key] = merged.get(key, False) or option
    return {(g, p, o) for (g, p), o in merged.items()}


def _after_table_revokes(
    columns: dict[str, set[Entry]], have: set[Entry], want: set[Entry]
) -> dict[str, set[Entry]]:
    """Column privileges once the table-level revocations have run.

    Revoking a privilege on a table revokes it on every column too (and
    revoking the grant option, the column's grant option).
    """
    have_map = {(g, p): o for g, p, o in have}
    want_map = {(g, p): o for g, p, o in want}
    gone = {k for k in have_map if k not in want_map}
    no_option = {k for k, o in have_map.items() if o and not want_map.get(k, True)}
    out: dict[str, set[Entry]] = {}
    for column, entries in columns.items():
        kept: set[Entry] = set()
        for g, p, o in entries:
            if (g, p) in gone:
                continue
            kept.add((g, p, o and (g, p) not in no_option))
        out[column] = kept
    return out


def privilege_statements(
    source: PrivilegeState,
    target: PrivilegeState,
    *,
    dropped: Iterable[str] = (),
    manage: bool = True,
    schema: str | None = None,
    exclude_schema: str | None = None,
) -> PrivilegeChanges:
    """The statements that give the live database the target's owners and privileges.

    Parameters:
        source: the live database's state, as read before the plan.
        target: the target's state.
        dropped: keys of the objects the plan drops (those it also creates
            are re-created: they start from their initial privileges).
        manage: plan every difference; when False, only give re-created
            objects back their owner and privileges.
        schema: only this schema.
        exclude_schema: every schema but this one.
    """
    if not source.role or not target.role:
        # a side known only by its inspection: nothing to compare
        return PrivilegeChanges()
    planner = _Planner(source, target, set(dropped), manage)
    for _key, want in sorted(target.objects.items()):
        if in_scope(want.schema, schema, exclude_schema):
            planner.plan_object(want)
    out = planner.out
    out.statements = planner.owners + planner.changes
    if manage:
        out.statements += _default_statements(
            planner, schema=schema, exclude_schema=exclude_schema
        )
    return out


def _default_statements(
    planner: _Planner, *, schema: str | None, exclude_schema: str | None
) -> list[str]:
    """``ALTER DEFAULT PRIVILEGES`` statements turning the live defaults into the target's."""
    source = planner.source
    wanted = {
        (planner.mapped(role), nsp, kind): planner.mapped_acl(entries)
        for (role, nsp, kind), entries in planner.target.defaults.items()
    }
    out: list[str] = []
    for role, nsp, kind in sorted(
        set(wanted) | set(source.defaults), key=lambda k: (k[0], k[1] or "", k[2])
    ):
        if nsp is None:
            if schema is not None:
                continue
            # without an entry, the built-in privileges (the same for any role)
            base = source.builtin.get(ACLDEFAULT_KINDS[kind], set())
            have = source.defaults.get((role, None, kind), base)
            want = wanted.get((role, None, kind), base)
        else:
            if not in_scope(nsp, schema, exclude_schema) or nsp not in (
                planner.target.schemas
            ):
                continue  # a schema the plan drops takes its defaults with it
            have = source.defaults.get((role, nsp, kind), set())
            want = wanted.get((role, nsp, kind), set())
        head = sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} ").format(
            sql.Identifier(role)
        )
        if nsp is not None:
            head = sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} ").format(
                sql.Identifier(role), sql.Identifier(nsp)
            )
        noun = sql.SQL(DEFAULT_NOUNS[kind])
        out += [
            _change_sql(head, c, noun, role) for c in _acl_changes(set(have), set(want))
        ]
    return out
