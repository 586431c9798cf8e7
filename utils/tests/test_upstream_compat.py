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

import logging
import os
from pathlib import Path

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


# -- the table checks: the `upstream_api` fixture of the root conftest.py ------

CALLABLE_ROWS = [row for row in UPSTREAM if row[2] is not None]


@pytest.mark.parametrize(("module", "qualname", "spec"), UPSTREAM)
def test_name_imports_from_its_upstream_path(upstream_api, module, qualname, spec):
    upstream_api.check_import(module, qualname, spec)


@pytest.mark.parametrize(("module", "qualname", "spec"), CALLABLE_ROWS)
@pytest.mark.parametrize("form", ["positional", "keyword", "required"])
def test_signature_accepts_upstream_calls(upstream_api, module, qualname, spec, form):
    upstream_api.check_call_form(module, qualname, spec, form)


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
