"""``python -m macrostrat.database.transfer`` and the ``macrostrat-db-transfer`` command.

Both run the ``dump``/``restore``/``move`` command line of
`macrostrat.database.transfer.cli`, which needs the ``cli`` extra
(``pip install 'macrostrat.database[cli]'``); without it they say so and
exit with status 1.
"""

from __future__ import annotations

import importlib.util
import sys

__all__ = ["main"]

MISSING_EXTRA = (
    "error: the transfer command line needs Typer: "
    "pip install 'macrostrat.database[cli]'"
)


def main(prog_name: str | None = None) -> None:
    """Run the transfer command line, or explain that the ``cli`` extra is missing."""
    if importlib.util.find_spec("typer") is None:
        sys.exit(MISSING_EXTRA)
    from .cli import PROGRAM
    from .cli import main as run

    run(prog_name=prog_name or PROGRAM)


if __name__ == "__main__":
    main(prog_name="python -m macrostrat.database.transfer")
