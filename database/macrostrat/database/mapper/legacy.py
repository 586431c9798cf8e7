"""Upstream's mapper names that code still imports: kept, with our semantics.

- `AutomapError`: the base of the mapper's errors (upstream never raised it).
- `model_builder` and `BaseModel`: upstream's module-level cache object and
  shared automap base. Nothing maps onto `BaseModel` here: every
  `DatabaseMapper` maps its models on a base of its own, so models never leak
  between databases.
- `UpstreamMapperAttributes`: the class attributes upstream's
  ``DatabaseMapper`` had (``automap_base``, ``automap_error``) and
  ``reflect_view``. Assigning ``DatabaseMapper.automap_base =
  DatabaseModelCache(path).automap_base()``, upstream's way to turn the model
  cache on, makes later mappers use that cache.
- `BaseCollection`: the common base of `ModelCollection` and `TableCollection`.
"""

from __future__ import annotations

import warnings
from abc import ABC
from typing import Any

from ..errors import AutomapError
from .cache import DatabaseModelCache, _automap_base
from .collections import ModelCollection, TableCollection

__all__ = [
    "AutomapError",
    "BaseCollection",
    "BaseModel",
    "UpstreamMapperAttributes",
    "model_builder",
]

model_builder = DatabaseModelCache()
"""Upstream's module-level `DatabaseModelCache` (no cache file)."""

BaseModel: Any = _automap_base(model_builder)
"""Upstream's shared automap base, the default of ``DatabaseMapper.automap_base``.

An empty automap base with `ModelHelperMixins` and ``builder =
model_builder``; mappers do not map onto it (see the module docstring)."""


class UpstreamMapperAttributes:
    """What upstream's ``DatabaseMapper`` had that ours does differently.

    ``DatabaseMapper.automap_base`` is `BaseModel` on the class; each mapper
    sets its own base on the instance. A base assigned to the class that was
    made by `DatabaseModelCache.automap_base` gives later mappers created
    without ``cache=`` that cache (its ``builder``); its own ``MetaData`` and
    classes are not used. ``automap_error`` is always None, as upstream.
    """

    automap_base: Any = BaseModel
    automap_error: BaseException | None = None

    @classmethod
    def _assigned_cache(cls) -> DatabaseModelCache | None:
        """The enabled cache of a base assigned to ``cls.automap_base``, if any."""
        builder = getattr(cls.automap_base, "builder", None)
        if isinstance(builder, DatabaseModelCache) and builder.enabled:
            return builder
        return None

    def reflect_view(self, tablename: str, *column_args: Any, **kwargs: Any) -> None:
        """Deprecated no-op, as upstream's was; use ``DatabaseMapper.map_view``."""
        warnings.warn(
            "DatabaseMapper.reflect_view() does nothing (as upstream); use "
            "map_view(name, primary_key=[...])",
            DeprecationWarning,
            stacklevel=2,
        )


class BaseCollection(ABC):  # noqa: B024 (no abstract methods: upstream's plain base)
    """Upstream's common base of `ModelCollection` and `TableCollection`.

    Both are registered as its subclasses, so ``isinstance(db.model,
    BaseCollection)`` holds. A subclass gets upstream's ``repr`` (the class
    name and its ``keys()``).
    """

    def keys(self) -> Any:
        """The collection's keys (subclasses provide them)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        keys = ",\n  ".join(self.keys())
        return f"{type(self).__name__}: [\n  {keys}\n]"


BaseCollection.register(ModelCollection)
BaseCollection.register(TableCollection)
