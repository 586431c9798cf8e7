"""Root test configuration: the shared fixtures of every package's tests.

The database fixtures come from a plugin: see `macrostrat.dinosaur.testing` for
``database_url``, ``db``, ... and the ``--teardown`` option. The plugin imports the
database packages only when a test asks for a database, so app-frame, auth and
utils tests run without them.

``upstream_api`` holds the checks behind each package's ``test_upstream_compat.py``
(its table of upstream names, paths and parameters stays in that module). Tests
run with ``--import-mode=importlib``, so this file cannot be imported: helpers
are shared as fixtures.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import warnings
from typing import Any

import pytest

pytest_plugins = ["macrostrat.dinosaur.testing", "pytester"]

CallForm = tuple[tuple[Any, ...], dict[str, Any]]


class UpstreamAPI:
    """Checks that a name keeps upstream's import path and call forms.

    A row of a compat table is ``(module, qualname, spec)``: the module upstream
    code imports from, the dotted name in it (``Class.method`` for members) and
    upstream's parameters. A spec lists the parameter names in order: ``name=``
    is optional, ``*args``/``**kwargs`` are variadic, names after ``*`` or
    ``*args`` are keyword-only (``"a, b=, *args, c, d=, **kw"``). A spec in
    `NOT_CALLED` (``None``, or the ``"class"``/``"attribute"`` markers of the
    database and dinosaur tables) marks a name whose call is not checked: a
    constant, a module attribute, a class whose constructor is not upstream's.
    """

    NOT_CALLED: tuple[str | None, ...] = (None, "class", "attribute")
    FORMS: tuple[str, ...] = ("positional", "keyword", "required")

    def resolve(self, module: str, qualname: str) -> Any:
        """Import ``module`` and follow the dotted ``qualname`` in it."""
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        return obj

    def signature(self, module: str, qualname: str) -> inspect.Signature:
        """The signature a caller sees.

        For ``Class.method``, a plain function on the class loses its first
        parameter (``self``); classmethods and staticmethods are looked up
        through the class, so they come bound (no ``cls``) as they are.
        """
        signature = inspect.signature(self.resolve(module, qualname))
        owner_name, _, attr = qualname.rpartition(".")
        if owner_name:
            owner = self.resolve(module, owner_name)
            if isinstance(owner, type) and inspect.isfunction(
                inspect.getattr_static(owner, attr)
            ):
                params = list(signature.parameters.values())[1:]
                signature = signature.replace(parameters=params)
        return signature

    def forms(self, spec: str, *, variadic: bool = True) -> dict[str, CallForm]:
        """Upstream's call forms of ``spec`` as ``{form: (args, kwargs)}``.

        ``positional``: every positional parameter by position, keyword-only ones
        by name; ``keyword``: every parameter by name; ``required``: only those
        without a default. With ``variadic`` (the default), upstream's
        ``*args``/``**kwargs`` also get extra values (two more positional
        arguments, an ``upstream_extra_option`` keyword) in the first two forms;
        without it, they are not exercised (the database and dinosaur tables,
        where upstream's ``**kwargs`` were passed on to other calls, not a
        promise to accept any name).
        """
        positional: list[tuple[str, bool]] = []  # (name, optional)
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
        if not variadic:
            var_positional = var_keyword = False
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

    def check_import(
        self,
        module: str,
        qualname: str,
        spec: str | None,
        *,
        deprecated: bool = False,
        silent: bool = False,
    ) -> None:
        """Assert that upstream's ``from module import name`` still works.

        The statement must give the module's attribute (the same object on every
        access), the dotted rest of ``qualname`` must resolve, and a name with a
        call spec must be callable. ``deprecated``: the import must warn with a
        `DeprecationWarning` naming it (the object is then the one the statement
        gave). ``silent``: importing must not warn (`DeprecationWarning` is an
        error); otherwise warnings are not checked.
        """
        top, _, rest = qualname.partition(".")
        namespace: dict[str, Any] = {}
        statement = f"from {module} import {top}"
        if deprecated:
            with pytest.warns(DeprecationWarning, match=top):
                exec(statement, namespace)
            obj = namespace[top]
            for part in filter(None, rest.split(".")):
                obj = getattr(obj, part)
        else:
            with warnings.catch_warnings() if silent else contextlib.nullcontext():
                if silent:
                    warnings.simplefilter("error", DeprecationWarning)
                exec(statement, namespace)
                assert namespace[top] is getattr(importlib.import_module(module), top)
                obj = self.resolve(module, qualname)
        if spec not in self.NOT_CALLED:
            assert callable(obj), f"{module}.{qualname} is not callable"

    def check_call_form(
        self,
        module: str,
        qualname: str,
        spec: str,
        form: str | None = None,
        *,
        deprecated: bool = False,
        variadic: bool = True,
    ) -> None:
        """Assert that our signature binds upstream's call ``form`` of ``spec``.

        ``form`` is one of `FORMS`, or ``None`` for each of them in turn (see
        `forms`, which also says what ``variadic`` does). ``deprecated``: looking
        the name up must warn with a `DeprecationWarning` naming it. A call that
        does not bind raises `TypeError` naming the form.
        """
        calls = self.forms(spec, variadic=variadic)
        expected = (
            pytest.warns(DeprecationWarning, match=qualname.split(".")[0])
            if deprecated
            else contextlib.nullcontext()
        )
        with expected:
            signature = self.signature(module, qualname)
            for name in self.FORMS if form is None else (form,):
                args, kwargs = calls[name]
                try:
                    signature.bind(*args, **kwargs)
                except TypeError as err:
                    raise TypeError(
                        f"upstream's {name} call ({spec}) does not bind to "
                        f"{module}.{qualname}{signature}: {err}"
                    ) from err


@pytest.fixture(scope="session")
def upstream_api() -> UpstreamAPI:
    """The upstream-compatibility checks (`UpstreamAPI`) of the compat modules."""
    return UpstreamAPI()
