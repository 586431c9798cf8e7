"""Every public name is exported, importable, and used (not just imported) by a test."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

MODULES = [
    "macrostrat.auth_system",
    "macrostrat.auth_system.errors",
    "macrostrat.auth_system.legacy",
    "macrostrat.auth_system.core",
    "macrostrat.auth_system.orcid",
]
TESTS = Path(__file__).parent
SOURCES = "\n".join(
    p.read_text() for p in TESTS.glob("*.py") if p.name != Path(__file__).name
)
# Import statements do not count as use: a name must appear in test code.
_IMPORTS = re.compile(
    r"^\s*(?:from\s+\S+\s+)?import\s+(?:\([^)]*\)|[^\n]*)", re.MULTILINE
)
USES = _IMPORTS.sub("", SOURCES)


def _public_names():
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            yield module_name, name


@pytest.mark.parametrize(("module_name", "name"), list(_public_names()))
def test_public_name_is_exported_and_used_by_a_test(module_name, name):
    module = importlib.import_module(module_name)
    assert hasattr(module, name)
    assert re.search(rf"\b{re.escape(name)}\b", USES), (
        f"{module_name}.{name} is imported but not used by any test"
    )


@pytest.mark.parametrize("module_name", MODULES)
def test_all_has_no_duplicates(module_name):
    names = importlib.import_module(module_name).__all__
    assert len(names) == len(set(names))
