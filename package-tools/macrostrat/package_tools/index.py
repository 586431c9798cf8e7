"""Ask a package index what it has: the files of one version (PEP 503/691
"simple" API), or every released version of a project (PyPI's JSON API, or
the simple API as a fallback)."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from .errors import IndexQueryError

__all__ = [
    "DEFAULT_CHECK_URL",
    "DEFAULT_INDEX_URL",
    "DEFAULT_TIMEOUT",
    "IndexFile",
    "published_files",
    "released_versions",
]

log = logging.getLogger(__name__)

DEFAULT_CHECK_URL = "https://pypi.org/simple/"
"""The index asked by default: PyPI's simple API."""

DEFAULT_INDEX_URL = "https://pypi.org/pypi/"
"""The JSON API asked for released versions by default: PyPI's
(`<url>/<name>/json`)."""

DEFAULT_TIMEOUT = 30.0
"""Seconds to wait for the index before giving up."""

_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"


@dataclass(frozen=True)
class IndexFile:
    """One file of a released version on an index.

    Attributes:
        filename: The wheel or sdist file name.
        sha256: Its SHA-256 digest (hex) as the index reports it, or `None`.
        yanked: Whether the index marks it yanked.
    """

    filename: str
    sha256: str | None = None
    yanked: bool = False


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.files: list[IndexFile] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        href = values.get("href") if tag == "a" else None
        if href:
            parts = urlsplit(href)
            fragment = dict(
                item.split("=", 1) for item in parts.fragment.split("&") if "=" in item
            )
            self.files.append(
                IndexFile(
                    unquote(parts.path.rsplit("/", 1)[-1]),
                    fragment.get("sha256"),
                    "data-yanked" in values,
                )
            )


def _simple_files(body: bytes, content_type: str) -> list[IndexFile]:
    if "json" in content_type:
        return [
            IndexFile(
                str(f["filename"]),
                (f.get("hashes") or {}).get("sha256"),
                bool(f.get("yanked")),
            )
            for f in json.loads(body).get("files", [])
        ]
    parser = _Links()
    parser.feed(body.decode("utf-8", "replace"))
    return parser.files


def _version_of(filename: str) -> Version | None:
    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(filename)[1]
        return parse_sdist_filename(filename)[1]
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None


def _get(url: str, accept: str, timeout: float) -> tuple[bytes, str] | None:
    """GET a URL: `(body, content type)`, or `None` for a 404.

    Raises:
        IndexQueryError: On any other HTTP status, a network error or a timeout.
    """
    request = urllib.request.Request(url, headers={"Accept": accept})
    log.debug("GET %s", url)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise IndexQueryError(
            f"{url} answered HTTP {exc.code} {exc.reason}", url
        ) from exc
    except TimeoutError as exc:
        raise IndexQueryError(
            f"{url} did not answer within {timeout:g} s", url
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            raise IndexQueryError(
                f"{url} did not answer within {timeout:g} s", url
            ) from exc
        raise IndexQueryError(f"could not reach {url}: {reason}", url) from exc


def _simple_listing(
    check_url: str, name: str, timeout: float
) -> tuple[str, list[IndexFile]]:
    url = f"{check_url.rstrip('/')}/{canonicalize_name(name)}/"
    answer = _get(url, _ACCEPT, timeout)
    if answer is None:
        return url, []
    try:
        return url, _simple_files(*answer)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IndexQueryError(
            f"{url} sent an answer that is not a simple index page", url
        ) from exc


def published_files(
    check_url: str, name: str, version: Version, *, timeout: float = DEFAULT_TIMEOUT
) -> frozenset[str]:
    """Return the file names an index has for one version of a project.

    Asks `<check_url>/<normalized name>/` (the simple API, JSON or HTML).
    A 404 means the project has no files at all.

    Args:
        check_url: The index's simple API root, e.g. `https://pypi.org/simple/`.
        name: The project name (any spelling).
        version: The version to look for.
        timeout: Seconds to wait for the index.

    Returns:
        The wheel and sdist file names of that version (possibly empty).

    Raises:
        IndexQueryError: On any other HTTP status, a network error or a
            timeout. Such a failure is never taken to mean "not published".
    """
    _, files = _simple_listing(check_url, name, timeout)
    return frozenset(f.filename for f in files if _version_of(f.filename) == version)


def _json_releases(body: bytes) -> dict[Version, tuple[IndexFile, ...]]:
    data: Any = json.loads(body)
    # a page without the list must never read as "nothing released"
    listed = data["releases"]
    releases: dict[Version, tuple[IndexFile, ...]] = {}
    for text, files in (listed or {}).items():
        try:
            version = Version(text)
        except InvalidVersion:
            log.debug("ignoring the version %r, which is not PEP 440", text)
            continue
        releases[version] = tuple(
            IndexFile(
                str(f["filename"]),
                (f.get("digests") or {}).get("sha256"),
                bool(f.get("yanked")),
            )
            for f in files or []
        )
    return releases


def released_versions(
    index_url: str,
    name: str,
    *,
    simple: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[Version, tuple[IndexFile, ...]]:
    """Return every version of a project an index has released, with its files.

    By default asks a JSON API like PyPI's, `<index_url>/<normalized
    name>/json`, whose `releases` also lists versions whose files were all
    deleted (such a version can't be uploaded again either). With `simple`,
    asks the simple API instead (`<index_url>/<normalized name>/`) and
    derives the versions from the file names. Yanked versions count: they
    exist. A 404 means the project has released nothing.

    Args:
        index_url: The JSON API root (e.g. `https://pypi.org/pypi/`), or with
            `simple` the simple API root (e.g. `https://pypi.org/simple/`).
        name: The project name (any spelling).
        simple: Ask the simple API.
        timeout: Seconds to wait for the index.

    Returns:
        Version → its files (possibly none).

    Raises:
        IndexQueryError: On any other HTTP status, a network error, a
            timeout or an answer that can't be read. Such a failure is never
            taken to mean "nothing released".
    """
    if simple:
        _, files = _simple_listing(index_url, name, timeout)
        grouped: dict[Version, list[IndexFile]] = {}
        for file in files:
            version = _version_of(file.filename)
            if version is not None:
                grouped.setdefault(version, []).append(file)
        return {version: tuple(found) for version, found in grouped.items()}
    url = f"{index_url.rstrip('/')}/{canonicalize_name(name)}/json"
    answer = _get(url, "application/json", timeout)
    if answer is None:
        return {}
    try:
        return _json_releases(answer[0])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IndexQueryError(
            f"{url} sent an answer that is not a JSON project page "
            "(is it the JSON API root, like https://pypi.org/pypi/?)",
            url,
        ) from exc
