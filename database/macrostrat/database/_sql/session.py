"""Which session a `Database`'s ``run_sql``, ``run_fixtures`` and ``run_query`` use.

`connect` turns a session into the runner's connection and mode; this module
picks the session first, for a `macrostrat.database.Database` (any
`macrostrat.database._connectable.DatabaseLike`), and merges its instance
parameters into the call's:

* `runner_session` (``run_sql``, ``run_fixtures``): inside a transaction
  block, the block's session, and the statements join its transaction;
  outside one, the default session, whose open transaction (pending ORM
  work, an earlier ``run_query``) is committed first, so that each statement
  commits on its own as with ``psql`` (upstream committed the session after
  every statement).  Inside a retried unit of work (a strict commit journal)
  that is refused before anything is committed: `UnsafeRetryError`.
* `query_session` (``run_query``): the current session, and whether the
  statement joins a transaction in progress (a block's, or the session's ORM
  work) rather than committing on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from .._commit import current_journal
from .._connectable import DatabaseLike
from ..errors import UnsafeRetryError

__all__ = ["merge_instance_params", "query_session", "runner_session"]


def runner_session(db: DatabaseLike) -> Session:
    """The session ``db.run_sql`` and ``db.run_fixtures`` run in (see the module docstring)."""
    if db.in_transaction_block():
        return db.session
    journal = current_journal()
    if journal is not None and journal.strict:
        # refused before the session's pending work is committed
        raise UnsafeRetryError(
            "run_sql() outside a transaction commits on its own (statement "
            "by statement, or its atomic block, after committing the session's "
            "pending work): inside a retried unit of work a re-run could commit "
            "it twice. Call it inside db.transaction() (run_with_retry opens "
            "one); nothing was run or committed"
        )
    session = db.session
    if session.in_transaction():
        session.commit()
    return session


def query_session(db: DatabaseLike) -> tuple[Session, bool]:
    """``(session, join)`` for ``db.run_query`` (see the module docstring)."""
    session = db.session
    return session, db.in_transaction_block() or session.in_transaction()


def merge_instance_params(
    instance_params: Mapping[str, Any], params: Any, kwargs: dict[str, Any]
) -> Any:
    """Merge a `Database`'s instance parameters into ``params`` (explicit values win).

    Pops ``use_instance_params`` (default True) from ``kwargs``. A mapping
    gives a new dict (the caller's is never changed); a list or tuple of
    mappings is merged mapping by mapping; positional parameters (a tuple
    or list of values) and None without instance parameters pass through
    untouched.
    """
    if not kwargs.pop("use_instance_params", True) or not instance_params:
        return params
    if params is None:
        return dict(instance_params)
    if isinstance(params, Mapping):
        return {**instance_params, **params}
    if (
        isinstance(params, (list, tuple))
        and params
        and all(isinstance(p, Mapping) for p in params)
    ):
        return type(params)({**instance_params, **p} for p in params)
    return params
