"""The SQL data path of `macrostrat.database`: from source text to statements.

This first stage splits PostgreSQL source text into `Statement` objects
(`split_statements`, `iter_statements`; see `macrostrat.database._sql.lexer` for
the exact lexical rules) and finds bind placeholders in the SQL tokens of one
statement (`find_placeholders`).
"""

from .lexer import (
    SQLSyntaxError,
    Statement,
    StatementKind,
    iter_statements,
    split_statements,
)
from .params_scan import Placeholder, PlaceholderKind, find_placeholders

__all__ = [
    "Placeholder",
    "PlaceholderKind",
    "SQLSyntaxError",
    "Statement",
    "StatementKind",
    "find_placeholders",
    "iter_statements",
    "split_statements",
]
