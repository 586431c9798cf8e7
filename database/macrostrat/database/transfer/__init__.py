"""Moving data in and out of PostgreSQL: COPY-speed bulk loads and exports."""

from __future__ import annotations

from .copy import BulkLoadError, bulk_upsert, copy_rows, copy_to

__all__ = ["BulkLoadError", "bulk_upsert", "copy_rows", "copy_to"]
