"""The statements of a plan that recreate an object, to be kept or left out together.

`AutoMigration.safe_plan` leaves out the unsafe statements and what needs
them; a recreation cut in half does not apply (or loses the object):

- an object dropped and created again (a function whose return type
  changes, a view, a constraint or index whose definition changes): the
  drop without the creation loses it, the creation without the drop fails;
- an enum or domain recreated (see `macrostrat.dinosaur._enums` and
  `macrostrat.dinosaur._domains`): the rename to
  ``<name>__old_version_to_be_dropped``, the new type, each column's
  conversion with its default dropped and set again around it (and its
  table's checks dropped and added again), and the drop of the old copy
  (which fails while a column still has the old type);
- the views dropped and created again around either (they depend on the
  recreated object, or on a table whose columns are converted).

`kept_together` finds those groups in the plan's text and the objects each
statement creates and drops.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from .hazards import _IDENT, _OLD_COPY, _QNAME, _bare, _norm_name, _strip_comments

__all__ = ["kept_together"]

_I = re.IGNORECASE | re.DOTALL

_RENAME = re.compile(
    rf"^alter\s+(?:type|domain)\s+({_QNAME})\s+rename\s+to\s+({_IDENT})\s*;?\s*$", _I
)
_TABLE = rf"^alter\s+table\s+(?:if\s+exists\s+)?(?:only\s+)?({_QNAME})\s+alter\s+(?:column\s+)?({_IDENT})\s+"
_CONVERT = re.compile(_TABLE + rf"(?:set\s+data\s+)?type\s+({_QNAME})", _I)
_DEFAULT = re.compile(_TABLE + r"(?:drop|set)\s+default\b", _I)


class _Groups:
    """Union-find over statement positions."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, items: Sequence[int]) -> bool:
        """Put ``items`` in one group; True when that merged groups."""
        merged = False
        for j in items[1:]:
            a, b = self.find(items[0]), self.find(j)
            if a != b:
                self.parent[b] = a
                merged = True
        return merged


def _closure(key: str, depends: Mapping[str, set[str]]) -> set[str]:
    """Every key ``key`` depends on, directly or not."""
    seen: set[str] = set()
    stack = [key]
    while stack:
        for ref in depends.get(stack.pop(), ()):
            if ref not in seen:
                seen.add(ref)
                stack.append(ref)
    return seen


def kept_together(
    statements: Sequence[str],
    creates: Sequence[set[str]],
    drops: Sequence[set[str]],
    depends: Mapping[str, set[str]],
) -> list[set[int]]:
    """For each statement, the positions of the statements kept or left out with it.

    Parameters:
        statements: the plan, in order.
        creates: the object keys each statement creates (see
            `macrostrat.dinosaur._order.describe`).
        drops: the object keys each statement drops.
        depends: the live catalog's dependencies (key: the keys it depends
            on), to tie the views dropped and created again to the recreation
            they make way for.

    Returns:
        one set per statement (its own position included).
    """
    n = len(statements)
    groups = _Groups(n)
    keys: dict[int, set[str]] = {}  # by group: the keys it recreates or converts
    dropped: dict[str, list[int]] = {}
    created: dict[str, list[int]] = {}
    for i in range(n):
        for key in drops[i]:
            dropped.setdefault(key, []).append(i)
        for key in creates[i]:
            created.setdefault(key, []).append(i)
    # an object dropped and created again
    recreated = sorted(set(dropped) & set(created))
    for key in recreated:
        groups.join([*dropped[key], *created[key]])
    texts = [_strip_comments(s) for s in statements]
    extra: list[tuple[int, str]] = []  # (member, key) beyond its own effects
    # an enum or domain renamed out of the way, created again, its columns converted
    for i, text in enumerate(texts):
        m = _RENAME.match(text)
        if not m or not _bare(m.group(2)).endswith(_OLD_COPY):
            continue
        name = _norm_name(m.group(1))
        old = f"{name.rsplit('.', 1)[0]}.{_bare(m.group(2))}"
        members = [i, *created.get(f"type:{name}", []), *dropped.get(f"type:{old}", [])]
        columns: set[tuple[str, str]] = set()
        for j, other in enumerate(texts):
            c = _CONVERT.match(other)
            if c and _norm_name(c.group(3)) == name:
                members.append(j)
                columns.add((_norm_name(c.group(1)), _bare(c.group(2))))
                extra.append((j, "rel:" + _norm_name(c.group(1))))
        for j, other in enumerate(texts):
            d = _DEFAULT.match(other)
            if d and (_norm_name(d.group(1)), _bare(d.group(2))) in columns:
                members.append(j)
        # the checks dropped and added again around the conversions
        tables = {f"constraint:{table}." for table, _ in columns}
        for key in recreated:
            if key.startswith(tuple(tables)):
                members += [*dropped[key], *created[key]]
        extra += [(i, f"type:{name}"), (i, f"type:{old}")]
        groups.join(members)
    # the views dropped and created again around a recreation or conversion
    views = [k for k in recreated if k.startswith("rel:")]
    needs = {k: _closure(k, depends) for k in views}
    changed = True
    while changed:
        changed = False
        keys.clear()
        for i in range(n):
            root = groups.find(i)
            keys.setdefault(root, set()).update(creates[i] | drops[i])
        for i, key in extra:
            keys.setdefault(groups.find(i), set()).add(key)
        for view in views:
            own = groups.find(dropped[view][0])
            for root, group_keys in list(keys.items()):
                if root != own and needs[view] & group_keys:
                    changed |= groups.join([own, root])
                    own = groups.find(own)
    members_of: dict[int, set[int]] = {}
    for i in range(n):
        members_of.setdefault(groups.find(i), set()).add(i)
    return [members_of[groups.find(i)] for i in range(n)]
