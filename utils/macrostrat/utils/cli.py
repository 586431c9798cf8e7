"""What the packages' command-line programs share: is the traceback wanted?

A program run with ``--verbose`` (here or by an application of
``macrostrat.app_frame`` that mounts it) shows the traceback of an error;
otherwise a short message. Nothing here imports Click or Typer: contexts are
read by their attributes.
"""

from __future__ import annotations

from typing import Any

__all__ = ["VERBOSE_KEY", "is_verbose"]

VERBOSE_KEY = "macrostrat.verbose"
"""The key a ``--verbose`` option sets in the Click context's ``meta``."""


def is_verbose(ctx: Any) -> bool:
    """Whether the command line asked for tracebacks.

    True when ``--verbose`` set `VERBOSE_KEY` in the context's ``meta``, or
    when a context object up the chain has a true ``verbose`` attribute (an
    application run with ``--verbose``).

    Parameters:
        ctx: a Click (or Typer) context, or None.
    """
    if ctx is None:
        return False
    meta = getattr(ctx, "meta", None)
    if isinstance(meta, dict) and meta.get(VERBOSE_KEY):
        return True
    current = ctx
    while current is not None:
        if getattr(getattr(current, "obj", None), "verbose", False) is True:
            return True
        current = getattr(current, "parent", None)
    return False
