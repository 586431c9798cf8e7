from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import macrostrat.utils as utils

MODULES = ["environment", "exc", "logs", "paths", "shell", "timer"]

UPSTREAM_ROOT_NAMES = {
    "ApplicationError",
    "BaseError",
    "get_logger",
    "setup_stderr_logs",
    "cmd",
    "split_args",
    "CodeTimer",
    "relative_path",
    "working_directory",
    "override_environment",
}

UPSTREAM_MODULE_NAMES = {
    "logs": {
        "get_logger",
        "setup_stderr_logs",
        "suppress_loggers",
        "SparrowLogFormatter",
        "console_handler",
    },
    "shell": {"run", "cmd", "split_args", "git_revision_info", "git_has_changes"},
    "timer": {"Timing", "CodeTimer", "code_timer", "ContextualTimer", "Timer"},
    "exc": {"BaseError", "ApplicationError"},
}


def test_version():
    assert isinstance(utils.__version__, str)
    assert utils.__version__


def test_root_exports_the_upstream_names_and_more():
    extra = {
        "suppress_loggers",
        "run",
        "git_revision_info",
        "git_has_changes",
        "git_revision",
        "ContextualTimer",
        "Timing",
        "Timer",
        "GitError",
    }
    assert set(utils.__all__) >= UPSTREAM_ROOT_NAMES | extra
    for name in utils.__all__:
        assert hasattr(utils, name), name


@pytest.mark.parametrize("module", MODULES)
def test_every_module_declares_all(module: str):
    mod = importlib.import_module(f"macrostrat.utils.{module}")
    assert mod.__all__
    assert len(set(mod.__all__)) == len(mod.__all__)
    for name in mod.__all__:
        assert hasattr(mod, name), name
        if name in utils.__all__:
            assert getattr(utils, name) is getattr(mod, name)


@pytest.mark.parametrize(("module", "names"), sorted(UPSTREAM_MODULE_NAMES.items()))
def test_upstream_module_paths(module: str, names: set[str]):
    mod = importlib.import_module(f"macrostrat.utils.{module}")
    assert names <= set(mod.__all__)


def test_star_import():
    namespace: dict[str, object] = {}
    exec("from macrostrat.utils import *", namespace)
    assert set(utils.__all__) <= set(namespace)


def test_public_objects_have_docstrings():
    for name in utils.__all__:
        obj = getattr(utils, name)
        if callable(obj):
            assert obj.__doc__, name
            assert obj.__doc__.strip().splitlines()[0], name


def _third_party_modules(code: str) -> set[str]:
    script = (
        "import sys\n"
        "before = set(sys.modules)\n"
        f"{code}\n"
        "new = {m.partition('.')[0] for m in set(sys.modules) - before}\n"
        "print(' '.join(sorted(new - set(sys.stdlib_module_names))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return set(result.stdout.split())


def test_import_is_light():
    # colorama is colorlog's own optional import (for Windows), used when installed
    allowed = {"macrostrat", "colorlog", "colorama"}
    assert _third_party_modules("import macrostrat.utils") <= allowed


def test_import_prints_nothing():
    result = subprocess.run(
        [sys.executable, "-c", "import macrostrat.utils"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert (result.stdout, result.stderr) == ("", "")
