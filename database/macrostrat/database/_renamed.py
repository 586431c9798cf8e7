"""Accept upstream's parameter names and positions on functions we renamed.

`renamed_parameters` wraps a function so that callers written against the
upstream packages keep working: an old keyword (``_input=``) is passed on under
our name (``target=``) with a ``DeprecationWarning``, and arguments upstream
took positionally (``drop_database(url, True)``) reach our keyword-only
parameters. The wrapper advertises a signature with both forms, so
``inspect.signature(f).bind(...)`` accepts what the function accepts.

Only the standard library is imported here, so any module may use it.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

__all__ = ["REQUIRED", "renamed_parameters"]

F = TypeVar("F", bound=Callable[..., Any])

_POSITIONAL = (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
)


class _Required:
    """Default shown in an advertised signature for "required under one of two names"."""

    def __repr__(self) -> str:
        return "<required>"


REQUIRED: Any = _Required()
"""The placeholder default of parameters that may come under either name."""


def _advertised(
    sig: inspect.Signature, renames: Mapping[str, str], positional: Sequence[str]
) -> inspect.Signature:
    """``sig`` as callers may use it: old names and upstream positions included."""
    params = list(sig.parameters.values())
    renamed = set(renames.values())
    pos = [p for p in params if p.kind in _POSITIONAL]
    var_pos = [p for p in params if p.kind is inspect.Parameter.VAR_POSITIONAL]
    kw_only = [
        p
        for p in params
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in positional
    ]
    var_kw = [p for p in params if p.kind is inspect.Parameter.VAR_KEYWORD]
    by_name = {p.name: p for p in params}
    pos += [
        by_name[name].replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD)
        for name in positional
    ]
    # A parameter that may come under its old name is no longer required
    # under the new one; the ones after it must then have defaults too.
    relaxed = False
    out_pos = []
    for p in pos:
        relaxed = relaxed or p.name in renamed
        if relaxed and p.default is inspect.Parameter.empty:
            p = p.replace(default=REQUIRED)
        out_pos.append(p)
    kw_only = [
        p.replace(default=REQUIRED)
        if p.name in renamed and p.default is inspect.Parameter.empty
        else p
        for p in kw_only
    ]
    old = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=REQUIRED)
        for name in renames
    ]
    return sig.replace(parameters=[*out_pos, *var_pos, *kw_only, *old, *var_kw])


def renamed_parameters(
    renames: Mapping[str, str] | None = None, *, positional: Sequence[str] = ()
) -> Callable[[F], F]:
    """Make a function also accept upstream's parameter names and positions.

    Parameters:
        renames: ``{upstream name: our name}``. The upstream name is accepted
            as a keyword and passed on as ours, with a ``DeprecationWarning``;
            giving both raises ``TypeError``.
        positional: our keyword-only parameters that upstream took
            positionally, in upstream's order after our positional ones
            (accepted positionally without a warning, as upstream's form).
    """
    renames = dict(renames or {})
    positional = tuple(positional)

    def decorate(func: F) -> F:
        sig = inspect.signature(func)
        own = [p.name for p in sig.parameters.values() if p.kind in _POSITIONAL]
        name = func.__qualname__

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if positional and len(args) > len(own):
                extra = args[len(own) :]
                if len(extra) > len(positional):
                    raise TypeError(
                        f"{name}() takes at most {len(own) + len(positional)} "
                        f"positional arguments ({len(args)} given)"
                    )
                args = args[: len(own)]
                for key, value in zip(positional, extra, strict=False):
                    if key in kwargs:
                        raise TypeError(
                            f"{name}() got multiple values for argument {key!r}"
                        )
                    kwargs[key] = value
            for old, new in renames.items():
                if old not in kwargs:
                    continue
                value = kwargs.pop(old)
                given = new in kwargs or (new in own and own.index(new) < len(args))
                if given:
                    raise TypeError(
                        f"{name}() got values for both {new!r} and its old name {old!r}"
                    )
                warnings.warn(
                    f"{name}({old}=...) is deprecated; use {new}=...",
                    DeprecationWarning,
                    stacklevel=2,
                )
                kwargs[new] = value
            return func(*args, **kwargs)

        wrapper.__signature__ = _advertised(sig, renames, positional)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
