"""The package root's names: what type checkers see is what runs.

The names of the modules that load the database stack are imported under
``TYPE_CHECKING`` for type checkers and from ``_DEFERRED`` at run time; the two
lists must stay the same.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import macrostrat.dinosaur as dinosaur


def _type_checking_imports() -> dict[str, set[str]]:
    """Module -> names of the ``from ... import`` statements under TYPE_CHECKING."""
    tree = ast.parse(Path(dinosaur.__file__).read_text())
    found: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom), ast.unparse(stmt)
                module = "." * stmt.level + (stmt.module or "")
                for alias in stmt.names:
                    assert alias.asname in (None, alias.name), ast.unparse(stmt)
                    found.setdefault(module, set()).add(alias.name)
    assert found, "no imports under TYPE_CHECKING"
    return found


def test_deferred_names_are_the_type_checking_imports():
    deferred = {module: set(names) for module, names in dinosaur._DEFERRED.items()}
    assert deferred == _type_checking_imports()


def test_every_name_is_its_module_attribute():
    """Eager or deferred, a name is the object its module defines."""
    for module, names in dinosaur._DEFERRED.items():
        source = importlib.import_module(module, "macrostrat.dinosaur")
        for name in names:
            assert getattr(dinosaur, name) is getattr(source, name), name
    for name in dinosaur.__all__:
        assert name in dir(dinosaur), name
        assert getattr(dinosaur, name) is not None, name


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="not_a_name"):
        dinosaur.not_a_name  # noqa: B018
