"""Put a plan's statements in an order the server accepts.

Each statement is read for the objects it creates, drops and changes
(`describe`), named by the object keys of `macrostrat.dinosaur._depends`.
`order_statements` then sorts the plan topologically:

- an object is created after every object it depends on in the *target*
  catalog (functions before the checks, defaults, generated columns, indexes,
  views and policies that call them; parents before partitions; referenced
  keys before foreign keys);
- an object is dropped after every object that depends on it in the *live*
  catalog has been dropped or changed (drops in reverse dependency order);
- a composite type loses or changes attributes after the live objects that
  depend on it and are dropped have been dropped (a view reading ``(p).c``);
- the statements about one object keep their relative order (a drop before the
  creation that replaces it, a table before its constraints);
- otherwise the input order is kept: among the statements that may run, the
  earliest comes first.

A dependency cycle (which the catalogs cannot produce between statements of a
correct plan) is broken by taking the earliest remaining statement.

Longer than 400 lines because the statement reader (`describe`, mostly the
patterns of the statements ``results`` writes) and the sort it feeds are one
algorithm: each pattern yields the keys the sort orders by.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ._depends import Catalog, ObjectKey
from .hazards import (
    _IDENT,
    _QNAME,
    _bare,
    _norm_name,
    _split_top_level,
    _strip_comments,
)

__all__ = ["StatementInfo", "describe", "order_statements"]

log = logging.getLogger(__name__)

_I = re.IGNORECASE | re.DOTALL


@dataclass
class StatementInfo:
    """What one statement does, by object key.

    Attributes:
        creates: the objects it makes (or replaces).
        drops: the objects it removes.
        touches: the objects it changes or needs to exist.
    """

    creates: set[ObjectKey] = field(default_factory=set)
    drops: set[ObjectKey] = field(default_factory=set)
    touches: set[ObjectKey] = field(default_factory=set)

    @property
    def keys(self) -> set[ObjectKey]:
        """Every object the statement is about."""
        return self.creates | self.drops | self.touches


def _rel(name: str) -> ObjectKey:
    return "rel:" + _norm_name(name)


def _schema_of(qualified: str) -> str:
    return qualified.split(".", 1)[0]


_RELKIND = r"(?:table|view|materialized\s+view|sequence|foreign\s+table)"

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(rf"^create\s+schema\s+(?:if\s+not\s+exists\s+)?({_IDENT})", _I),
        "c_schema",
    ),
    (re.compile(rf"^drop\s+schema\s+(?:if\s+exists\s+)?({_IDENT})", _I), "d_schema"),
    (
        re.compile(rf"^create\s+extension\s+(?:if\s+not\s+exists\s+)?({_IDENT})", _I),
        "c_ext",
    ),
    (re.compile(rf"^drop\s+extension\s+(?:if\s+exists\s+)?({_IDENT})", _I), "d_ext"),
    (re.compile(rf"^create\s+(?:type|domain)\s+({_QNAME})", _I), "c_type"),
    (
        re.compile(rf"^drop\s+(?:type|domain)\s+(?:if\s+exists\s+)?({_QNAME})", _I),
        "d_type",
    ),
    (re.compile(rf"^alter\s+(?:type|domain)\s+({_QNAME})", _I), "t_type"),
    (
        re.compile(
            r"^create\s+(?:(?:global\s+|local\s+)?(?:temp|temporary|unlogged)\s+)?table\s+"
            rf"(?:if\s+not\s+exists\s+)?({_QNAME})(?:\s+partition\s+of\s+({_QNAME}))?",
            _I,
        ),
        "c_table",
    ),
    (
        re.compile(
            r"^create\s+(?:or\s+replace\s+)?(?:(?:temp|temporary|recursive)\s+)?"
            rf"(?:materialized\s+)?view\s+(?:if\s+not\s+exists\s+)?({_QNAME})",
            _I,
        ),
        "c_rel",
    ),
    (
        re.compile(rf"^create\s+sequence\s+(?:if\s+not\s+exists\s+)?({_QNAME})", _I),
        "c_rel",
    ),
    (re.compile(rf"^drop\s+{_RELKIND}\s+(?:if\s+exists\s+)?(.*)$", _I), "d_rel"),
    (
        re.compile(
            rf"^alter\s+sequence\s+(?:if\s+exists\s+)?({_QNAME})"
            rf"(?:.*\bowned\s+by\s+({_QNAME}))?",
            _I,
        ),
        "t_seq",
    ),
    (
        re.compile(
            rf"^alter\s+(?:view|materialized\s+view|foreign\s+table)\s+"
            rf"(?:if\s+exists\s+)?({_QNAME})",
            _I,
        ),
        "t_rel",
    ),
    (
        re.compile(
            rf"^refresh\s+materialized\s+view\s+(?:concurrently\s+)?({_QNAME})", _I
        ),
        "t_rel",
    ),
    (
        re.compile(
            rf"^alter\s+table\s+(?:if\s+exists\s+)?(?:only\s+)?({_QNAME})\s+(.*)$", _I
        ),
        "t_table",
    ),
    (
        re.compile(
            r"^create\s+(?:unique\s+)?index\s+(?:concurrently\s+)?(?:if\s+not\s+exists\s+)?"
            rf"({_IDENT})\s+on\s+(?:only\s+)?({_QNAME})",
            _I,
        ),
        "c_index",
    ),
    (
        re.compile(r"^drop\s+index\s+(?:concurrently\s+)?(?:if\s+exists\s+)?(.*)$", _I),
        "d_index",
    ),
    (
        re.compile(
            r"^create\s+(?:or\s+replace\s+)?(?:function|procedure|aggregate)\s+(.*)$",
            _I,
        ),
        "c_func",
    ),
    (
        re.compile(
            r"^drop\s+(?:function|procedure|aggregate)\s+(?:if\s+exists\s+)?(.*)$", _I
        ),
        "d_func",
    ),
    (
        re.compile(rf"^alter\s+(?:function|procedure|aggregate)\s+({_QNAME})", _I),
        "t_func",
    ),
    (
        re.compile(
            rf"^create\s+(?:or\s+replace\s+)?(?:constraint\s+)?trigger\s+({_IDENT})\s.*?"
            rf"\bon\s+({_QNAME})\s+(?:from|not|deferrable|initially|referencing|for|when|execute)\b",
            _I,
        ),
        "c_trigger",
    ),
    (
        re.compile(
            rf"^drop\s+trigger\s+(?:if\s+exists\s+)?({_IDENT})\s+on\s+({_QNAME})", _I
        ),
        "d_trigger",
    ),
    (re.compile(rf"^create\s+policy\s+({_IDENT})\s+on\s+({_QNAME})", _I), "c_policy"),
    (
        re.compile(
            rf"^drop\s+policy\s+(?:if\s+exists\s+)?({_IDENT})\s+on\s+({_QNAME})", _I
        ),
        "d_policy",
    ),
    (re.compile(rf"^alter\s+policy\s+({_IDENT})\s+on\s+({_QNAME})", _I), "t_policy"),
    (re.compile(r"^comment\s+on\s+(.*)$", _I), "comment"),
    (re.compile(r"^(?:grant|revoke)\s+.*?\bon\s+(.*)$", _I), "grant"),
]


def _function_key(
    text: str, function_keys: Mapping[str, ObjectKey]
) -> ObjectKey | None:
    """The key of the function a statement names: exact text first, then by name."""
    key = function_keys.get(text.strip())
    if key is not None:
        return key
    m = re.match(rf"\s*({_QNAME})\s*\(", text)
    if not m:
        return None
    name = _norm_name(m.group(1))
    found = [
        k for k in set(function_keys.values()) if k.startswith(f"function:{name}(")
    ]
    return found[0] if len(found) == 1 else f"function:{name}(?)"


def _comment_target(
    rest: str, function_keys: Mapping[str, ObjectKey]
) -> ObjectKey | None:
    m = re.match(
        rf"(table|view|materialized\s+view|sequence|foreign\s+table|index|type|domain"
        rf"|schema|extension|function|procedure|column|constraint|trigger|policy)\s+"
        rf"({_QNAME})(?:\s+on\s+(?:domain\s+)?({_QNAME}))?",
        rest.strip(),
        _I,
    )
    if not m:
        return None
    kind = re.sub(r"\s+", " ", m.group(1).lower())
    name = m.group(2)
    if kind in ("table", "view", "materialized view", "sequence", "foreign table"):
        return _rel(name)
    if kind == "column":
        parts = _norm_name(name).split(".")
        return (
            "rel:" + ".".join(parts[:-1])
            if len(parts) > 2
            else "rel:public." + parts[0]
        )
    if kind == "index":
        return "index:" + _norm_name(name)
    if kind in ("type", "domain"):
        return "type:" + _norm_name(name)
    if kind == "schema":
        return "schema:" + _bare(name)
    if kind == "extension":
        return "extension:" + _bare(name)
    if kind in ("function", "procedure"):
        return _function_key(rest.strip()[len(m.group(1)) :], function_keys)
    if kind in ("constraint", "trigger", "policy") and m.group(3):
        table = _norm_name(m.group(3))
        return f"{kind}:{table}.{_bare(name)}"
    return None


def _alter_table(table: str, actions: str, info: StatementInfo) -> None:
    key = "rel:" + table
    info.touches.add(key)
    schema = _schema_of(table)
    for action in _split_top_level(actions.rstrip().rstrip(";")):
        if m := re.match(rf"add\s+constraint\s+({_IDENT})", action, _I):
            info.creates.add(f"constraint:{table}.{_bare(m.group(1))}")
            if u := re.search(rf"\busing\s+index\s+({_IDENT})", action, _I):
                info.touches.add(f"index:{schema}.{_bare(u.group(1))}")
        elif m := re.match(
            rf"drop\s+constraint\s+(?:if\s+exists\s+)?({_IDENT})", action, _I
        ):
            info.drops.add(f"constraint:{table}.{_bare(m.group(1))}")
        elif m := re.match(rf"validate\s+constraint\s+({_IDENT})", action, _I):
            info.touches.add(f"constraint:{table}.{_bare(m.group(1))}")
        elif m := re.match(rf"(?:attach|detach)\s+partition\s+({_QNAME})", action, _I):
            info.touches.add(_rel(m.group(1)))


def describe(sql: str, function_keys: Mapping[str, ObjectKey]) -> StatementInfo:
    """The objects one statement creates, drops and changes.

    Parameters:
        sql: one statement.
        function_keys: the keys of functions by the exact text of their create
            and drop statements (``pg_get_functiondef`` output cannot be
            parsed for the argument types reliably).
    """
    info = StatementInfo()
    text = _strip_comments(sql)
    for pattern, what in _PATTERNS:
        m = pattern.match(text)
        if not m:
            continue
        if what == "c_schema":
            info.creates.add("schema:" + _bare(m.group(1)))
        elif what == "d_schema":
            info.drops.add("schema:" + _bare(m.group(1)))
        elif what == "c_ext":
            info.creates.add("extension:" + _bare(m.group(1)))
        elif what == "d_ext":
            info.drops.add("extension:" + _bare(m.group(1)))
        elif what == "c_type":
            info.creates.add("type:" + _norm_name(m.group(1)))
        elif what == "d_type":
            for name in _split_top_level(
                re.sub(
                    r"\s+(cascade|restrict)\s*;?\s*$|;\s*$", "", m.group(1), flags=_I
                )
            ):
                info.drops.add("type:" + _norm_name(name))
        elif what == "t_type":
            info.touches.add("type:" + _norm_name(m.group(1)))
        elif what == "c_table":
            info.creates.add(_rel(m.group(1)))
            if m.group(2):
                info.touches.add(_rel(m.group(2)))
        elif what == "c_rel":
            info.creates.add(_rel(m.group(1)))
        elif what == "d_rel":
            rest = re.sub(
                r"\s+(cascade|restrict)\s*;?\s*$|;\s*$", "", m.group(1), flags=_I
            )
            for name in _split_top_level(rest):
                info.drops.add(_rel(name))
        elif what == "t_seq":
            info.touches.add(_rel(m.group(1)))
            if m.group(2):
                owner = _norm_name(m.group(2)).split(".")
                if len(owner) >= 3:
                    info.touches.add("rel:" + ".".join(owner[:-1]))
        elif what == "t_rel":
            info.touches.add(_rel(m.group(1)))
        elif what == "t_table":
            _alter_table(_norm_name(m.group(1)), m.group(2), info)
        elif what == "c_index":
            table = _norm_name(m.group(2))
            info.creates.add(f"index:{_schema_of(table)}.{_bare(m.group(1))}")
            info.touches.add("rel:" + table)
        elif what == "d_index":
            rest = re.sub(
                r"\s+(cascade|restrict)\s*;?\s*$|;\s*$", "", m.group(1), flags=_I
            )
            for name in _split_top_level(rest):
                info.drops.add("index:" + _norm_name(name))
        elif what == "c_func":
            key = function_keys.get(sql.strip()) or _function_key(
                m.group(1), function_keys
            )
            if key:
                info.creates.add(key)
        elif what == "d_func":
            key = function_keys.get(sql.strip()) or _function_key(
                m.group(1), function_keys
            )
            if key:
                info.drops.add(key)
        elif what == "t_func":
            key = _function_key(
                text[text.lower().index(m.group(1).lower()) :], function_keys
            )
            if key:
                info.touches.add(key)
        elif what in ("c_trigger", "d_trigger", "c_policy", "d_policy", "t_policy"):
            kind = "trigger" if "trigger" in what else "policy"
            table = _norm_name(m.group(2))
            key = f"{kind}:{table}.{_bare(m.group(1))}"
            {"c": info.creates, "d": info.drops, "t": info.touches}[what[0]].add(key)
            info.touches.add("rel:" + table)
        elif what == "comment":
            target = _comment_target(m.group(1), function_keys)
            if target:
                info.touches.add(target)
        elif what == "grant":
            target = _comment_target(
                re.split(r"\s+(?:to|from)\s+", m.group(1), maxsplit=1, flags=_I)[0]
                if re.match(r"(table|sequence|function|schema)\s", m.group(1), _I)
                else "table " + m.group(1),
                function_keys,
            )
            if target:
                info.touches.add(target)
        break
    return info


def _add_edge(
    edges: list[set[int]], indegree: list[int], before: int, after: int
) -> None:
    if before != after and after not in edges[before]:
        edges[before].add(after)
        indegree[after] += 1


_RESHAPE_TYPE = re.compile(
    rf"^\s*alter\s+type\s+({_QNAME})\s+(?:drop|alter)\s+attribute\b", _I
)


def order_statements(
    statements: Sequence[str],
    *,
    target: Catalog,
    source: Catalog,
    function_keys: Mapping[str, ObjectKey],
) -> list[str]:
    """Sort ``statements`` by the dependencies of the objects they touch.

    See the module documentation for the rules.  A ``SET
    check_function_bodies`` statement goes first, so that functions may be
    created before the tables their bodies read.

    Parameters:
        statements: the plan, in ``results``' order.
        target: the catalog of the target database.
        source: the catalog of the live database.
        function_keys: see `describe`.
    """
    preamble = [
        s for s in statements if re.match(r"\s*set\s+check_function_bodies", s, _I)
    ]
    items = [s for s in statements if s not in preamble]
    infos = [describe(s, function_keys) for s in items]
    n = len(items)
    edges: list[set[int]] = [set() for _ in range(n)]
    indegree = [0] * n

    by_key: dict[ObjectKey, list[int]] = {}
    creators: dict[ObjectKey, list[int]] = {}
    for i, info in enumerate(infos):
        for key in info.keys:
            by_key.setdefault(key, []).append(i)
        for key in info.creates:
            creators.setdefault(key, []).append(i)

    # statements about one object keep their order
    for positions in by_key.values():
        for a, b in itertools.pairwise(positions):
            _add_edge(edges, indegree, a, b)

    # creations after what they depend on in the target
    for i, info in enumerate(infos):
        for key in info.creates | info.touches:
            for dep in target.depends.get(key, ()):
                for c in creators.get(dep, ()):
                    _add_edge(edges, indegree, c, i)

    # drops after the statements that drop or change what depends on them
    dependents = source.dependents_of()
    for i, info in enumerate(infos):
        # a key or unique constraint goes with its index, which the foreign
        # keys referencing it depend on
        backed = {source.backing[k] for k in info.drops if k in source.backing}
        for key in info.drops | backed:
            for dependent in dependents.get(key, ()):
                for j in by_key.get(dependent, ()):
                    if j != i and dependent not in infos[j].creates:
                        _add_edge(edges, indegree, j, i)

    # a type's attributes dropped or changed after its dependents' drops
    for i, item in enumerate(items):
        m = _RESHAPE_TYPE.match(item)
        if not m:
            continue
        for dependent in dependents.get("type:" + _norm_name(m.group(1)), ()):
            for j in by_key.get(dependent, ()):
                if j != i and dependent in infos[j].drops:
                    _add_edge(edges, indegree, j, i)

    ready = [i for i in range(n) if indegree[i] == 0]
    heapq.heapify(ready)
    done = [False] * n
    out: list[int] = []
    while len(out) < n:
        if not ready:
            cycle_at = min(i for i in range(n) if not done[i])
            log.debug("dependency cycle at statement %d; keeping its place", cycle_at)
            indegree[cycle_at] = 0
            ready = [cycle_at]
        i = heapq.heappop(ready)
        if done[i]:
            continue
        done[i] = True
        out.append(i)
        for j in edges[i]:
            indegree[j] -= 1
            if indegree[j] == 0 and not done[j]:
                heapq.heappush(ready, j)
    return [*preamble, *(items[i] for i in out)]
