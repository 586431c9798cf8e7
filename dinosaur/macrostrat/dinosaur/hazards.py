"""Classify migration statements by what they can do to data.

Every statement of a plan is read by a small structural classifier (the kind of
statement and, for ``ALTER TABLE``, each of its actions) and carries a list of
named hazards, in the manner of stripe's pg-schema-diff.  The classifier also
looks at the whole plan, so that a view or function that is dropped and created
again, a constraint that is replaced, or a constraint added to a table that the
same plan creates, are not reported as dangerous.

Hazards (`Hazard`), the first five are *unsafe*: a plan containing them is
applied only when the caller allows each one by name:

- ``DELETES_DATA``: rows, columns or stored state are removed (``DROP TABLE``,
  ``DROP COLUMN``, ``DROP SCHEMA``, ``DROP SEQUENCE``, ``DROP EXTENSION``,
  ``DROP ... CASCADE``, ``TRUNCATE``, ``DELETE``, a composite type's ``DROP
  ATTRIBUTE``).
- ``REWRITES_DATA``: stored values are converted (``ALTER COLUMN ... TYPE``,
  a composite type's ``ALTER ATTRIBUTE ... TYPE``), which can lose precision,
  truncate text or fail; this includes the columns
  converted to an enum recreated without some of its values (a row holding
  one fails the cast) and to a domain recreated on a new base type (the
  table is rewritten).
- ``MAY_FAIL_ON_EXISTING_DATA``: a new rule is checked against existing rows
  (``SET NOT NULL``, ``ADD CONSTRAINT`` check/unique/foreign/primary/exclusion,
  ``VALIDATE CONSTRAINT``, ``CREATE UNIQUE INDEX``) on a table the plan does not
  create.
- ``REMOVES_CONSTRAINT``: a constraint that the data relies on is dropped and
  not replaced by the same plan.
- ``AUTHZ_UPDATE``: privileges or row-level security change (``GRANT``,
  ``REVOKE``, policies, ``ENABLE``/``DISABLE ROW LEVEL SECURITY``).

The others are reported but never block a plan:

- ``HAS_UNTRACKABLE_DEPENDENCIES``: a view, function, type, trigger or rule is
  dropped and not recreated; code outside the database may use it.
- ``IMPACTS_DATABASE_PERFORMANCE``: an index is dropped, or built without
  ``CONCURRENTLY`` on a table that already exists (writes wait for the build).

Harmless statements (``CREATE`` anything, dropping and recreating views and
functions, ``DROP DEFAULT``, ``DROP NOT NULL``, ``SET DEFAULT``, comments,
``ALTER TYPE ... ADD VALUE``, the old copy of a recreated enum or domain)
carry no hazard.

``ALTER TYPE ... ADD VALUE`` runs *before* the transaction
(`PlannedStatement.before_transaction`): PostgreSQL refuses to use a new enum
value in the transaction that adds it, and the rest of the plan may use it (a
default, a check, a partition bound, a view).

Longer than 400 lines because the classifier's rules (one per statement kind
and ``ALTER TABLE`` action), the plan-wide context that excuses some of them,
and this documentation of the hazards are one reading of a statement.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "UNSAFE_HAZARDS",
    "Hazard",
    "PlannedStatement",
    "classify_statements",
    "is_transactional",
    "parse_hazards",
    "runs_before_transaction",
]


class Hazard(str, enum.Enum):
    """A named risk that a migration statement carries."""

    DELETES_DATA = "DELETES_DATA"
    REWRITES_DATA = "REWRITES_DATA"
    MAY_FAIL_ON_EXISTING_DATA = "MAY_FAIL_ON_EXISTING_DATA"
    REMOVES_CONSTRAINT = "REMOVES_CONSTRAINT"
    AUTHZ_UPDATE = "AUTHZ_UPDATE"
    HAS_UNTRACKABLE_DEPENDENCIES = "HAS_UNTRACKABLE_DEPENDENCIES"
    IMPACTS_DATABASE_PERFORMANCE = "IMPACTS_DATABASE_PERFORMANCE"

    @property
    def unsafe(self) -> bool:
        """True when a plan with this hazard needs the caller's explicit allowance."""
        return self in UNSAFE_HAZARDS

    def __str__(self) -> str:
        return self.value


UNSAFE_HAZARDS: frozenset[Hazard] = frozenset(
    {
        Hazard.DELETES_DATA,
        Hazard.REWRITES_DATA,
        Hazard.MAY_FAIL_ON_EXISTING_DATA,
        Hazard.REMOVES_CONSTRAINT,
        Hazard.AUTHZ_UPDATE,
    }
)
"""The hazards that block a plan unless allowed by name."""


def parse_hazards(names: Iterable[str | Hazard]) -> frozenset[Hazard]:
    """Turn hazard names (case-insensitive) into `Hazard` members.

    Raises:
        ValueError: a name is not a hazard; the message lists the valid names.
    """
    out: set[Hazard] = set()
    for name in names:
        if isinstance(name, Hazard):
            out.add(name)
            continue
        try:
            out.add(Hazard(str(name).strip().upper()))
        except ValueError:
            valid = ", ".join(h.value for h in Hazard)
            raise ValueError(f"unknown hazard {name!r}; valid names: {valid}") from None
    return frozenset(out)


@dataclass(frozen=True)
class PlannedStatement:
    """One statement of a migration plan with its hazards.

    Attributes:
        sql: the statement text.
        hazards: the hazards it carries, in a stable order.
        reasons: one human-readable reason per hazard.
        transactional: False for statements PostgreSQL refuses to run inside a
            transaction block (``CREATE INDEX CONCURRENTLY`` and the like); they
            are run after the transaction, each on its own.  Also False for
            the statements that run before it (``before_transaction``).
        before_transaction: True for ``ALTER TYPE ... ADD VALUE``: it runs and
            commits before the transaction, so that the plan may use the new
            value (see `runs_before_transaction`).
    """

    sql: str
    hazards: tuple[Hazard, ...] = ()
    reasons: tuple[str, ...] = ()
    transactional: bool = True
    before_transaction: bool = False

    @property
    def unsafe(self) -> bool:
        """True when one of the hazards is unsafe."""
        return any(h.unsafe for h in self.hazards)

    def unsafe_hazards(self) -> tuple[Hazard, ...]:
        """The unsafe hazards of this statement."""
        return tuple(h for h in self.hazards if h.unsafe)

    def __str__(self) -> str:
        return self.sql


# -- a small lexer -------------------------------------------------------------

_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_QNAME = rf"{_IDENT}(?:\s*\.\s*{_IDENT})*"


def _strip_comments(sql: str) -> str:
    """Drop leading whitespace and comments."""
    s = sql.lstrip()
    while True:
        if s.startswith("--"):
            nl = s.find("\n")
            s = "" if nl < 0 else s[nl + 1 :].lstrip()
        elif s.startswith("/*"):
            end = s.find("*/")
            s = "" if end < 0 else s[end + 2 :].lstrip()
        else:
            return s


def _norm_name(name: str) -> str:
    """A canonical form of a possibly qualified, possibly quoted name."""
    parts = re.findall(_IDENT, name)
    out = []
    for p in parts:
        if p.startswith('"'):
            out.append(p[1:-1].replace('""', '"'))
        else:
            out.append(p.lower())
    if len(out) == 1:
        out.insert(0, "public")
    return ".".join(out)


def _bare(name: str) -> str:
    """The last part of a name, as `_norm_name` spells it (``"S"."T"`` gives ``T``)."""
    return _norm_name(name).split(".")[-1]


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses, quotes and dollar quotes."""
    parts: list[str] = []
    depth = 0
    start = 0
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"":
            end = text.find(ch, i + 1)
            while end >= 0 and end + 1 < n and text[end + 1] == ch:
                end = text.find(ch, end + 2)
            i = n if end < 0 else end + 1
            continue
        if ch == "$":
            m = re.match(r"\$[A-Za-z0-9_]*\$", text[i:])
            if m:
                end = text.find(m.group(0), i + len(m.group(0)))
                i = n if end < 0 else end + len(m.group(0))
                continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


_NON_TRANSACTIONAL = re.compile(
    r"^(?:create\s+(?:unique\s+)?index\s+concurrently"
    r"|drop\s+index\s+concurrently"
    r"|reindex\b[^;]*\bconcurrently"
    r"|vacuum\b|create\s+database\b|drop\s+database\b"
    r"|alter\s+system\b|create\s+tablespace\b|drop\s+tablespace\b)",
    re.IGNORECASE,
)


def is_transactional(sql: str) -> bool:
    """False when PostgreSQL refuses to run ``sql`` inside a transaction block."""
    return _NON_TRANSACTIONAL.match(_strip_comments(sql)) is None


_ADD_VALUE = re.compile(rf"^alter\s+type\s+{_QNAME}\s+add\s+value\b", re.IGNORECASE)


def runs_before_transaction(sql: str) -> bool:
    """True for ``ALTER TYPE ... ADD VALUE``, which a plan commits before its transaction.

    PostgreSQL accepts ``ADD VALUE`` inside a transaction block (since 12)
    but refuses to *use* the new value before that transaction commits
    ("unsafe use of new value"); a plan adding a value may use it in a
    default, a check, a partition bound, a view or a function, so the
    additions are committed first.  A plan writes them ``ADD VALUE IF NOT
    EXISTS``, so running the plan again after a failure is harmless.

    Parameters:
        sql: one statement.
    """
    return _ADD_VALUE.match(_strip_comments(sql)) is not None


# -- plan context ---------------------------------------------------------------


@dataclass
class _Context:
    created_tables: set[str] = field(default_factory=set)
    created: dict[str, set[str]] = field(default_factory=dict)
    added_constraints: set[tuple[str, str]] = field(default_factory=set)
    created_indexes: set[str] = field(default_factory=set)
    dropped_tables: set[str] = field(default_factory=set)
    dropped_constraints: set[tuple[str, str]] = field(default_factory=set)
    replaced_types: set[str] = field(default_factory=set)
    row_estimates: Mapping[str, int] = field(default_factory=dict)
    owners: Mapping[str, str] = field(default_factory=dict)

    def goes_with_dropped_table(self, name: str) -> bool:
        """True when ``name`` (an index or sequence) belongs to a table the plan drops."""
        return self.owners.get(name) in self.dropped_tables

    def recreated(self, kind: str, name: str) -> bool:
        return name in self.created.get(kind, set())


_CREATE_TABLE = re.compile(
    rf"^create\s+(?:(?:global\s+|local\s+)?(?:temp|temporary|unlogged)\s+)?table\s+"
    rf"(?:if\s+not\s+exists\s+)?({_QNAME})",
    re.IGNORECASE,
)
_CREATE_OBJECT = re.compile(
    rf"^create\s+(?:or\s+replace\s+)?(?:(?:temp|temporary|recursive)\s+)?"
    rf"(materialized\s+view|view|function|procedure|aggregate|type|trigger|rule"
    rf"|sequence|schema|extension|domain)\s+(?:if\s+not\s+exists\s+)?({_QNAME})",
    re.IGNORECASE,
)
_CREATE_INDEX = re.compile(
    rf"^create\s+(unique\s+)?index\s+(concurrently\s+)?(?:if\s+not\s+exists\s+)?"
    rf"(?:({_IDENT})\s+)?on\s+(?:only\s+)?({_QNAME})",
    re.IGNORECASE,
)
_ALTER_TABLE = re.compile(
    rf"^alter\s+table\s+(?:if\s+exists\s+)?(?:only\s+)?({_QNAME})\s+(.*)$",
    re.IGNORECASE | re.DOTALL,
)
_OLD_COPY = "__old_version_to_be_dropped"
# an enum or domain renamed out of the way of its new version
_RENAME_OLD = re.compile(
    rf"^alter\s+(?:type|domain)\s+({_QNAME})\s+rename\s+to\s+"
    rf"(?:\"[^\"]*{_OLD_COPY}\"|\S*{_OLD_COPY})",
    re.IGNORECASE,
)
_TYPE_CHANGE = re.compile(
    rf"alter\s+(?:column\s+)?({_IDENT})\s+(?:set\s+data\s+)?type\s+({_QNAME})",
    re.IGNORECASE,
)
_DROP = re.compile(
    r"^drop\s+(materialized\s+view|view|function|procedure|aggregate|type|trigger"
    r"|rule|sequence|schema|extension|domain|table|index|policy|collation"
    r"|foreign\s+table|cast|operator|publication|subscription)\s+"
    r"(concurrently\s+)?(?:if\s+exists\s+)?(.*)$",
    re.IGNORECASE | re.DOTALL,
)


def _object_kind(kind: str) -> str:
    kind = re.sub(r"\s+", " ", kind.lower())
    if kind in ("procedure", "aggregate"):
        return "function"
    return kind


def _first_name(rest: str) -> str:
    m = re.match(_QNAME, rest.strip())
    return _norm_name(m.group(0)) if m else rest.strip().lower()


def _scan(
    statements: Sequence[str],
    row_estimates: Mapping[str, int] | None = None,
    owners: Mapping[str, str] | None = None,
) -> _Context:
    ctx = _Context(row_estimates=row_estimates or {}, owners=owners or {})
    for raw in statements:
        s = _strip_comments(raw)
        m = _CREATE_TABLE.match(s)
        if m:
            ctx.created_tables.add(_norm_name(m.group(1)))
            continue
        m = _RENAME_OLD.match(s)
        if m:
            ctx.replaced_types.add(_norm_name(m.group(1)))
            continue
        m = _CREATE_OBJECT.match(s)
        if m:
            kind = _object_kind(m.group(1))
            ctx.created.setdefault(kind, set()).add(_norm_name(m.group(2)))
            if kind == "materialized view":
                # built from its query: its indexes check no existing rows
                ctx.created_tables.add(_norm_name(m.group(2)))
            continue
        m = _ALTER_DOMAIN.match(s)
        if m:
            c = re.match(rf"add\s+constraint\s+({_IDENT})", m.group(2), re.IGNORECASE)
            if c:
                ctx.added_constraints.add(
                    ("domain " + _norm_name(m.group(1)), _bare(c.group(1)))
                )
            continue
        m = _DROP.match(s)
        if m and _object_kind(m.group(1)) in ("table", "foreign table"):
            rest = re.sub(
                r"\s+(cascade|restrict)\s*;?\s*$|;\s*$", "", m.group(3), flags=re.I
            )
            for name in _split_top_level(rest):
                ctx.dropped_tables.add(_norm_name(name))
            continue
        m = _CREATE_INDEX.match(s)
        if m and m.group(3):
            table = _norm_name(m.group(4))
            schema = table.split(".")[0]
            ctx.created_indexes.add(f"{schema}.{_norm_name(m.group(3)).split('.')[-1]}")
            continue
        m = _ALTER_TABLE.match(s)
        if m:
            table = _norm_name(m.group(1))
            for action in _split_top_level(m.group(2).rstrip().rstrip(";")):
                am = re.match(rf"add\s+constraint\s+({_IDENT})", action, re.IGNORECASE)
                if am:
                    cname = _norm_name(am.group(1)).split(".")[-1]
                    ctx.added_constraints.add((table, cname))
                dm = re.match(
                    rf"drop\s+constraint\s+(?:if\s+exists\s+)?({_IDENT})",
                    action,
                    re.IGNORECASE,
                )
                if dm:
                    cname = _norm_name(dm.group(1)).split(".")[-1]
                    ctx.dropped_constraints.add((table, cname))
    return ctx


# -- per statement -------------------------------------------------------------


def _alter_table_hazards(
    table: str, actions: str, ctx: _Context
) -> list[tuple[Hazard, str]]:
    new_table = table in ctx.created_tables
    out: list[tuple[Hazard, str]] = []
    for action in _split_top_level(actions.rstrip().rstrip(";")):
        a = re.sub(r"\s+", " ", action.strip()).lower()
        if re.match(r"drop (column )?(?!constraint\b)", a) and not a.startswith(
            ("drop constraint", "drop default", "drop not null", "drop identity")
        ):
            col = re.sub(r"^drop (column )?(if exists )?", "", a).split(" ")[0]
            out.append((Hazard.DELETES_DATA, f"drops column {col} of {table}"))
        elif a.startswith("drop constraint"):
            cm = re.match(
                rf"drop\s+constraint\s+(?:if\s+exists\s+)?({_IDENT})",
                action.strip(),
                re.IGNORECASE,
            )
            cname = _norm_name(cm.group(1)).split(".")[-1] if cm else a
            if (
                table,
                cname,
            ) not in ctx.added_constraints and table not in ctx.dropped_tables:
                out.append(
                    (Hazard.REMOVES_CONSTRAINT, f"drops constraint {cname} of {table}")
                )
        elif re.match(r"alter (column )?\S+ (set data )?type ", a):
            col = re.sub(r"^alter (column )?", "", a).split(" ")[0]
            if not new_table:
                out.append(
                    (Hazard.REWRITES_DATA, _type_change_reason(table, col, action, ctx))
                )
        elif re.match(r"alter (column )?\S+ set not null", a):
            col = re.sub(r"^alter (column )?", "", a).split(" ")[0]
            if not new_table:
                out.append(
                    (
                        Hazard.MAY_FAIL_ON_EXISTING_DATA,
                        f"requires existing rows of {table} to have {col}",
                    )
                )
        elif a.startswith("add constraint") or re.match(
            r"add (check|unique|primary key|foreign key|exclude)\b", a
        ):
            if not new_table and " not valid" not in a:
                out.append(
                    (
                        Hazard.MAY_FAIL_ON_EXISTING_DATA,
                        f"adds a constraint checked against existing rows of {table}",
                    )
                )
        elif a.startswith("validate constraint"):
            if not new_table:
                out.append(
                    (
                        Hazard.MAY_FAIL_ON_EXISTING_DATA,
                        f"validates a constraint against existing rows of {table}",
                    )
                )
        elif re.match(r"add (column )?(if not exists )?\S+ .*\bnot null\b", a) and not (
            new_table or re.search(r"\bdefault\b|\bgenerated\b", a)
        ):
            out.append(
                (
                    Hazard.MAY_FAIL_ON_EXISTING_DATA,
                    f"adds a NOT NULL column without a default to {table}",
                )
            )
        elif re.match(r"(enable|disable|force|no force) row level security", a):
            out.append((Hazard.AUTHZ_UPDATE, f"changes row level security of {table}"))
        elif re.match(r"owner to ", a):
            out.append((Hazard.AUTHZ_UPDATE, f"changes the owner of {table}"))
    return out


def _type_change_reason(table: str, col: str, action: str, ctx: _Context) -> str:
    """Why an ``ALTER COLUMN ... TYPE`` rewrites data, naming a recreated type."""
    m = _TYPE_CHANGE.match(action.strip())
    new_type = _norm_name(m.group(2)) if m else ""
    if m:
        col = _norm_name(m.group(1)).split(".")[-1]
    if new_type in ctx.replaced_types and ctx.recreated("type", new_type):
        return (
            f"changes the type of {table}.{col}: converts it to the recreated "
            f"enum {new_type} through text (a row holding a value the enum no "
            "longer has fails)"
        )
    if new_type in ctx.replaced_types and ctx.recreated("domain", new_type):
        return (
            f"changes the type of {table}.{col}: converts it to domain "
            f"{new_type} on its new base type (the table is rewritten)"
        )
    return f"changes the type of {table}.{col}"


def _drop_hazards(kind: str, rest: str, ctx: _Context) -> list[tuple[Hazard, str]]:
    kind = _object_kind(kind)
    name = _first_name(rest)
    cascade = re.search(r"\bcascade\s*;?\s*$", rest, re.IGNORECASE) is not None
    out: list[tuple[Hazard, str]] = []
    if kind in ("table", "foreign table"):
        # even when the plan creates it again (say, as a partitioned table):
        # the new table is empty
        if kind == "table" or name not in ctx.created_tables:
            rows = ctx.row_estimates.get(name)
            if rows is None or rows < 0:
                count = "row count unknown: never analysed"
            else:
                count = f"about {rows} row{'s' if rows != 1 else ''}"
            out.append(
                (Hazard.DELETES_DATA, f"drops table {name} and its rows ({count})")
            )
    elif kind == "schema":
        m = re.match(_QNAME, rest.strip())
        schema = _bare(m.group(0)) if m else name
        out.append((Hazard.DELETES_DATA, f"drops schema {schema}"))
    elif kind == "sequence":
        if not ctx.recreated("sequence", name) and not ctx.goes_with_dropped_table(
            name
        ):
            out.append((Hazard.DELETES_DATA, f"drops sequence {name} and its state"))
    elif kind == "extension":
        out.append(
            (Hazard.DELETES_DATA, f"drops extension {name} and the objects it owns")
        )
    elif kind == "index":
        if name not in ctx.created_indexes and not ctx.goes_with_dropped_table(name):
            out.append((Hazard.IMPACTS_DATABASE_PERFORMANCE, f"drops index {name}"))
    elif kind == "policy":
        out.append((Hazard.AUTHZ_UPDATE, "drops a row level security policy"))
    elif kind in ("type", "domain") and name.endswith(_OLD_COPY):
        pass  # the old copy of an enum or domain being changed; its columns were converted
    elif kind in (
        "view",
        "materialized view",
        "function",
        "type",
        "trigger",
        "rule",
        "domain",
        "collation",
        "cast",
        "operator",
    ):
        if kind == "materialized view" and not ctx.recreated(kind, name):
            out.append(
                (Hazard.HAS_UNTRACKABLE_DEPENDENCIES, f"drops materialized view {name}")
            )
        elif kind in ("trigger", "rule"):
            # Triggers and rules are created without a schema: compare bare names.
            bare = name.split(".")[-1]
            if bare not in {c.split(".")[-1] for c in ctx.created.get(kind, ())}:
                out.append(
                    (Hazard.HAS_UNTRACKABLE_DEPENDENCIES, f"drops {kind} {name}")
                )
        elif not ctx.recreated(kind, name):
            out.append((Hazard.HAS_UNTRACKABLE_DEPENDENCIES, f"drops {kind} {name}"))
    if cascade and not any(h is Hazard.DELETES_DATA for h, _ in out):
        out.append(
            (
                Hazard.DELETES_DATA,
                f"drops {kind} {name} with CASCADE (drops dependents)",
            )
        )
    return out


_ALTER_DOMAIN = re.compile(
    rf"^alter\s+domain\s+({_QNAME})\s+(.*)$", re.IGNORECASE | re.DOTALL
)


def _domain_hazards(name: str, action: str, ctx: _Context) -> list[tuple[Hazard, str]]:
    """``ALTER DOMAIN`` checks existing values when it adds a rule to a live domain."""
    low = action.lower()
    if ctx.recreated("domain", name):
        return []  # created by this plan: no value uses it yet
    if re.match(r"add\s+constraint\b", low) and not re.search(r"\bnot\s+valid\b", low):
        return [
            (
                Hazard.MAY_FAIL_ON_EXISTING_DATA,
                f"checks the existing values of domain {name} against a new constraint",
            )
        ]
    if re.match(r"set\s+not\s+null\b", low):
        return [
            (
                Hazard.MAY_FAIL_ON_EXISTING_DATA,
                f"checks that no existing value of domain {name} is null",
            )
        ]
    if re.match(r"validate\s+constraint\b", low):
        return [
            (
                Hazard.MAY_FAIL_ON_EXISTING_DATA,
                f"validates a constraint of domain {name} on existing values",
            )
        ]
    m = re.match(
        rf"drop\s+constraint\s+(?:if\s+exists\s+)?({_IDENT})", action, re.IGNORECASE
    )
    if m and ("domain " + name, _bare(m.group(1))) not in ctx.added_constraints:
        return [
            (
                Hazard.REMOVES_CONSTRAINT,
                f"drops constraint {_bare(m.group(1))} of domain {name}",
            )
        ]
    return []


_ALTER_ATTRIBUTE = re.compile(
    rf"^alter\s+type\s+({_QNAME})\s+((?:add|drop|alter)\s+attribute\b.*)$",
    re.IGNORECASE | re.DOTALL,
)


def _attribute_hazards(type_name: str, actions: str) -> list[tuple[Hazard, str]]:
    """Hazards of ``ALTER TYPE ... ADD|DROP|ALTER ATTRIBUTE`` on a composite type."""
    out: list[tuple[Hazard, str]] = []
    for action in _split_top_level(actions.rstrip().rstrip(";")):
        m = re.match(
            rf"(drop|alter)\s+attribute\s+(?:if\s+exists\s+)?({_IDENT})",
            action.strip(),
            re.IGNORECASE,
        )
        if not m:
            continue  # ADD ATTRIBUTE: new, empty
        name = _norm_name(m.group(2)).split(".")[-1]
        if m.group(1).lower() == "drop":
            out.append(
                (
                    Hazard.DELETES_DATA,
                    f"drops attribute {name} of type {type_name} "
                    "(its values in the columns of the type)",
                )
            )
        else:
            out.append(
                (
                    Hazard.REWRITES_DATA,
                    f"changes the type of attribute {name} of type {type_name}",
                )
            )
    return out


def _classify_one(raw: str, ctx: _Context) -> PlannedStatement:
    s = _strip_comments(raw)
    found: list[tuple[Hazard, str]] = []
    low = s.lower()
    if m := _CREATE_INDEX.match(s):
        table = _norm_name(m.group(4))
        if table not in ctx.created_tables:
            if m.group(1):
                found.append(
                    (
                        Hazard.MAY_FAIL_ON_EXISTING_DATA,
                        f"builds a unique index on existing rows of {table}",
                    )
                )
            if not m.group(2):
                found.append(
                    (
                        Hazard.IMPACTS_DATABASE_PERFORMANCE,
                        f"builds an index on {table} without CONCURRENTLY "
                        "(writes wait for the build)",
                    )
                )
    elif m := _ALTER_TABLE.match(s):
        found = _alter_table_hazards(_norm_name(m.group(1)), m.group(2), ctx)
    elif m := _DROP.match(s):
        found = _drop_hazards(m.group(1), m.group(3), ctx)
    elif re.match(r"^(truncate|delete\s+from)\b", low):
        found.append((Hazard.DELETES_DATA, "removes rows"))
    elif re.match(r"^(update)\b", low):
        found.append((Hazard.REWRITES_DATA, "updates rows"))
    elif re.match(
        r"^(grant|revoke|create\s+policy|alter\s+policy|alter\s+default\s+privileges)\b",
        low,
    ):
        found.append((Hazard.AUTHZ_UPDATE, "changes privileges or policies"))
    elif re.match(
        r"^alter\s+(sequence|type|domain|schema|function|procedure|routine|aggregate"
        r"|view|materialized\s+view|foreign\s+table)\b.*\bowner\s+to\b",
        low,
        re.DOTALL,
    ):
        found.append((Hazard.AUTHZ_UPDATE, "changes an owner"))
    elif m := _ALTER_ATTRIBUTE.match(s):
        found = _attribute_hazards(_norm_name(m.group(1)), m.group(2))
    elif m := _ALTER_DOMAIN.match(s):
        found = _domain_hazards(_norm_name(m.group(1)), m.group(2), ctx)
    hazards: list[Hazard] = []
    reasons: list[str] = []
    for hazard, reason in found:
        hazards.append(hazard)
        reasons.append(reason)
    before = runs_before_transaction(raw)
    return PlannedStatement(
        sql=raw,
        hazards=tuple(hazards),
        reasons=tuple(reasons),
        transactional=is_transactional(raw) and not before,
        before_transaction=before,
    )


def classify_statements(
    statements: Iterable[str],
    *,
    row_estimates: Mapping[str, int] | None = None,
    owners: Mapping[str, str] | None = None,
) -> list[PlannedStatement]:
    """Classify each statement of a plan, in order.

    The whole plan is read first, so that objects dropped and recreated by the
    plan, constraints replaced by it and tables created by it are recognised.
    A table the plan drops is one ``DELETES_DATA`` hazard: its own
    constraints, indexes and owned sequences, dropped with it, carry none.

    Parameters:
        statements: SQL statements, one per item (as ``results.dbdiff`` produces
            them).
        row_estimates: the live database's estimated rows per table
            (``schema.name``; -1 when never analysed), shown in the reasons.
        owners: the table (``schema.name``) of each index and owned sequence
            of the live database.
    """
    items = [str(s) for s in statements]
    ctx = _scan(items, row_estimates, owners)
    return [_classify_one(s, ctx) for s in items]
