"""All-or-nothing file changes."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import VersioningError

__all__ = ["FileTransaction"]

log = logging.getLogger("macrostrat.package_tools")


class FileTransaction:
    """Buffered file writes and deletions, applied together or not at all.

    Nothing touches the disk until `applied`.
    Files that other programs will change inside the `applied` block (a
    lock file rewritten by `uv lock`) can be registered with `watch`, so they
    are restored as well if the block fails.
    """

    def __init__(self) -> None:
        self._changes: dict[Path, bytes | None] = {}
        self._watched: list[Path] = []

    @property
    def paths(self) -> list[Path]:
        """The files written or deleted, in the order they were registered."""
        return list(self._changes)

    def write(self, path: Path, text: str) -> None:
        """Plan to write `text` (UTF-8) to `path`."""
        self._changes[path] = text.encode("utf-8")

    def delete(self, path: Path) -> None:
        """Plan to delete `path`."""
        self._changes[path] = None

    def watch(self, path: Path) -> None:
        """Restore `path` too if the `applied` block fails."""
        self._watched.append(path)

    @contextmanager
    def applied(self) -> Iterator[None]:
        """Apply the changes; undo them all if applying or the block fails.

        Each new file content is first written to a temporary file next to
        its target (keeping the target's permissions), then moved into place.
        If any step fails, or the `with` block raises, every file is restored
        to its original content (files that did not exist are removed).

        Raises:
            VersioningError: If the changes could not be applied (the files
                are restored; the original error is the cause).
        """
        originals: dict[Path, bytes | None] = {}
        for path in [*self._changes, *self._watched]:
            if path not in originals:
                originals[path] = path.read_bytes() if path.exists() else None
        temporary: dict[Path, Path] = {}
        try:
            try:
                for path, content in self._changes.items():
                    if content is not None:
                        temporary[path] = self._stage(path, content)
                for path, content in self._changes.items():
                    if content is None:
                        path.unlink(missing_ok=True)
                    else:
                        os.replace(temporary[path], path)
                        del temporary[path]
            except OSError as exc:
                raise VersioningError(
                    f"could not write {getattr(exc, 'filename', None) or 'the files'}: "
                    f"{exc.strerror or exc}; nothing was changed"
                ) from exc
            yield
        except BaseException:
            self._restore(originals)
            raise
        finally:
            for leftover in temporary.values():
                leftover.unlink(missing_ok=True)

    @staticmethod
    def _stage(path: Path, content: bytes) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_name(f".{path.name}.mono-{os.getpid()}.tmp")
        with staged.open("wb") as handle:
            handle.write(content)
        if path.exists():
            shutil.copymode(path, staged)
        return staged

    @staticmethod
    def _restore(originals: dict[Path, bytes | None]) -> None:
        for path, content in originals.items():
            try:
                if content is None:
                    path.unlink(missing_ok=True)
                elif not path.exists() or path.read_bytes() != content:
                    path.write_bytes(content)
            except OSError:  # pragma: no cover - nothing better to do
                log.exception("could not restore %s", path)
        log.info("Restored %d file(s) after a failure", len(originals))
