"""Upstream import path for the error types (`macrostrat.app_frame.exc`).

New code can import them from `macrostrat.app_frame` or
`macrostrat.app_frame.errors`.
"""

from .errors import ApplicationError, BaseError, SubsystemError

__all__ = ["ApplicationError", "BaseError", "SubsystemError"]
