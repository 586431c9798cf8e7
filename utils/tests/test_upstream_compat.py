"""Upstream compatibility: every name and signature of `macrostrat.utils` 1.3.3.

The table is generated from the upstream API reference
(`api-appframe-auth-utils-tools.md`, section 2): one row per public name, with
its upstream import path and, for callables, upstream's parameters. Each name
must import from that path, and each signature must accept upstream's
positional and keyword forms (checked with `inspect.Signature.bind`). A few
real calls in upstream's keyword forms follow.

Parameter specs: names in order; `name=` is optional, `*args`/`**kwargs` are
variadic, names after `*` or `*args` are keyword-only. `None` marks a
non-callable (a constant, a handler, a context variable) or an exception
class without a Python signature (checked by a real call instead).

Not carried over: `os`, `contextmanager` and `Path`, which upstream's package
namespace exposed only because its `__init__` imported them.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
from pathlib import Path
from typing import Any

import pytest

UPSTREAM: list[tuple[str, str, str | None]] = [
    # 2.1 macrostrat.utils
    ("macrostrat.utils", "ApplicationError", "message, details="),
    ("macrostrat.utils", "BaseError", None),  # an Exception subclass
    ("macrostrat.utils", "get_logger", "name=, level=, handler="),
    ("macrostrat.utils", "setup_stderr_logs", "*args, level="),
    ("macrostrat.utils", "cmd", "*args, **kwargs"),
    ("macrostrat.utils", "split_args", "*args"),
    ("macrostrat.utils", "CodeTimer", ""),
    ("macrostrat.utils", "relative_path", "base, *parts"),
    ("macrostrat.utils", "working_directory", "path"),
    ("macrostrat.utils", "override_environment", "**kwargs"),
    # 2.2 macrostrat.utils.logs
    ("macrostrat.utils.logs", "SparrowLogFormatter", ""),
    ("macrostrat.utils.logs", "console_handler", None),
    ("macrostrat.utils.logs", "get_logger", "name=, level=, handler="),
    ("macrostrat.utils.logs", "setup_stderr_logs", "*args, level="),
    ("macrostrat.utils.logs", "suppress_loggers", "*loggers, level="),
    # 2.3 macrostrat.utils.shell
    ("macrostrat.utils.shell", "split_args", "*args"),
    ("macrostrat.utils.shell", "run", "*args, **kwargs"),
    ("macrostrat.utils.shell", "cmd", "*args, **kwargs"),
    ("macrostrat.utils.shell", "git_revision_info", "**kwargs"),
    ("macrostrat.utils.shell", "git_has_changes", ""),
    # 2.4 macrostrat.utils.timer (Timing was a pydantic model: keyword fields)
    ("macrostrat.utils.timer", "Timing", "*, name, delta, total, time"),
    ("macrostrat.utils.timer", "CodeTimer", ""),
    ("macrostrat.utils.timer", "CodeTimer.step", "name"),
    ("macrostrat.utils.timer", "CodeTimer._add_step", "name"),
    ("macrostrat.utils.timer", "CodeTimer.server_timings", ""),
    ("macrostrat.utils.timer", "code_timer", None),
    ("macrostrat.utils.timer", "ContextualTimer", ""),
    ("macrostrat.utils.timer", "ContextualTimer.add_step", "name"),
    ("macrostrat.utils.timer", "ContextualTimer.context", ""),
    ("macrostrat.utils.timer", "Timer", ""),
    # 2.5 macrostrat.utils.exc
    ("macrostrat.utils.exc", "BaseError", None),
    ("macrostrat.utils.exc", "ApplicationError", "message, details="),
    ("macrostrat.utils.exc", "ApplicationError.render", ""),
]


# -- the table checks (the same helpers in every package's compat module) -----


def _resolve(module: str, qualname: str) -> Any:
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _signature(module: str, qualname: str) -> inspect.Signature:
    """Our signature, without `self` for plain methods looked up on their class."""
    signature = inspect.signature(_resolve(module, qualname))
    owner_name, _, attr = qualname.rpartition(".")
    if owner_name:
        owner = _resolve(module, owner_name)
        if isinstance(owner, type) and inspect.isfunction(
            inspect.getattr_static(owner, attr)
        ):
            params = list(signature.parameters.values())[1:]
            signature = signature.replace(parameters=params)
    return signature


def _parse(
    spec: str,
) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]], bool, bool]:
    """(positional, keyword_only, has *args, has **kwargs); pairs are (name, optional)."""
    positional: list[tuple[str, bool]] = []
    keyword_only: list[tuple[str, bool]] = []
    var_positional = var_keyword = after_star = False
    for raw in (part.strip() for part in spec.split(",")):
        if not raw:
            continue
        if raw.startswith("**"):
            var_keyword = True
        elif raw.startswith("*"):
            var_positional = var_positional or raw != "*"
            after_star = True
        else:
            pair = (raw.rstrip("="), raw.endswith("="))
            (keyword_only if after_star else positional).append(pair)
    return positional, keyword_only, var_positional, var_keyword


def _forms(spec: str) -> dict[str, tuple[tuple[Any, ...], dict[str, Any]]]:
    """Upstream's call forms: everything positional, everything by keyword, required only."""
    positional, keyword_only, var_positional, var_keyword = _parse(spec)
    value = object()
    extra_args = (value, value) if var_positional else ()
    extra_kwargs = {"upstream_extra_option": value} if var_keyword else {}
    kw_only = {name: value for name, _ in keyword_only}
    return {
        "positional": (
            (*(value for _ in positional), *extra_args),
            {**kw_only, **extra_kwargs},
        ),
        "keyword": (
            (),
            {**{n: value for n, _ in positional}, **kw_only, **extra_kwargs},
        ),
        "required": (
            tuple(value for _, optional in positional if not optional),
            {name: value for name, optional in keyword_only if not optional},
        ),
    }


@pytest.mark.parametrize(("module", "qualname", "spec"), UPSTREAM)
def test_name_imports_from_its_upstream_path(module, qualname, spec):
    top = qualname.split(".")[0]
    namespace: dict[str, Any] = {}
    exec(f"from {module} import {top}", namespace)
    assert namespace[top] is getattr(importlib.import_module(module), top)
    obj = _resolve(module, qualname)
    if spec is not None:
        assert callable(obj), f"{module}.{qualname} is not callable"


@pytest.mark.parametrize(
    ("module", "qualname", "spec"), [row for row in UPSTREAM if row[2] is not None]
)
@pytest.mark.parametrize("form", ["positional", "keyword", "required"])
def test_signature_accepts_upstream_calls(module, qualname, spec, form):
    args, kwargs = _forms(spec)[form]
    _signature(module, qualname).bind(*args, **kwargs)


# -- real calls in upstream's forms -------------------------------------------


def test_upstream_keyword_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from macrostrat.utils import (
        ApplicationError,
        BaseError,
        cmd,
        get_logger,
        override_environment,
        relative_path,
        split_args,
        working_directory,
    )
    from macrostrat.utils.logs import SparrowLogFormatter, suppress_loggers
    from macrostrat.utils.timer import Timer, Timing

    here = tmp_path / "module.py"
    here.write_text("")
    assert relative_path(base=here) == tmp_path
    assert relative_path(here, "data", "x.sql") == tmp_path / "data" / "x.sql"
    with working_directory(path=tmp_path):
        assert Path.cwd() == tmp_path.resolve()
    monkeypatch.delenv("MACROSTRAT_COMPAT", raising=False)
    with override_environment(MACROSTRAT_COMPAT="1"):
        assert os.environ["MACROSTRAT_COMPAT"] == "1"
    assert "MACROSTRAT_COMPAT" not in os.environ

    handler = logging.NullHandler()
    logger = get_logger(name="compat.test", level=logging.INFO, handler=handler)
    assert logger.level == logging.INFO
    assert handler in logger.handlers
    logger.removeHandler(handler)
    with suppress_loggers("compat.test", level=logging.CRITICAL):
        assert logger.level == logging.CRITICAL
    # upstream ignored the formatter's arguments; positional ones still work
    assert isinstance(SparrowLogFormatter("%(message)s"), logging.Formatter)

    assert split_args("docker compose", "ps --services") == [
        "docker",
        "compose",
        "ps",
        "--services",
    ]
    assert cmd("true").returncode == 0

    timer = Timer()
    step = timer._add_step("load")
    assert isinstance(step, Timing)
    assert step.name == "load"
    assert timer.server_timings().startswith("load;dur=")
    assert Timing(name="x", delta=0.0, total=0.0, time=0.0).name == "x"

    assert isinstance(ApplicationError("x"), BaseError)
    assert str(BaseError("plain")) == "plain"
    error = ApplicationError(message="Oops", details="Try again")
    assert (str(error), error.details) == ("Oops", "Try again")
    assert error.render() == "[danger]Oops[/]\n[details]Try again[/]\n"
