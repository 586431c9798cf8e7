"""The `Database` class: one engine, one session, and helpers around them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import URL, Engine, Result, text
from sqlalchemy.orm import Session

from .engine import create_engine

__all__ = ["Database"]


class Database:
    """A PostgreSQL database reached through one SQLAlchemy engine.

    The engine uses psycopg 3; ``postgresql://`` URLs are normalised to it.

    Parameters:
        db_conn: a URL string, a ``URL`` or an existing ``Engine``.
        echo_sql: log every statement SQLAlchemy sends.
        **kwargs: passed to `sqlalchemy.create_engine` when a URL is given.
    """

    def __init__(
        self, db_conn: str | URL | Engine, *, echo_sql: bool = False, **kwargs: Any
    ) -> None:
        if echo_sql:
            kwargs.setdefault("echo", True)
        self.engine: Engine = create_engine(db_conn, **kwargs)
        self.session: Session = Session(bind=self.engine)

    def __repr__(self) -> str:
        return f"<Database {self.engine.url.render_as_string(hide_password=True)}>"

    def run_query(
        self, sql: str, params: Mapping[str, Any] | Sequence[Any] | None = None
    ) -> Result[Any]:
        """Run one statement in the session and return its result (not committed)."""
        return self.session.execute(text(sql), params or {})

    def cleanup(self) -> None:
        """Close the session and dispose of the engine's connection pool."""
        self.session.close()
        self.engine.dispose()
