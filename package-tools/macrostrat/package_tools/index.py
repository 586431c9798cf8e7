"""Ask a package index (PEP 503/691 "simple" API) which files a version already has."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from .errors import IndexQueryError

__all__ = ["DEFAULT_CHECK_URL", "DEFAULT_TIMEOUT", "published_files"]

log = logging.getLogger(__name__)

DEFAULT_CHECK_URL = "https://pypi.org/simple/"
"""The index asked by default: PyPI's simple API."""

DEFAULT_TIMEOUT = 30.0
"""Seconds to wait for the index before giving up."""

_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href") if tag == "a" else None
        if href:
            self.names.append(unquote(urlsplit(href).path.rsplit("/", 1)[-1]))


def _file_names(body: bytes, content_type: str) -> list[str]:
    if "json" in content_type:
        return [str(f["filename"]) for f in json.loads(body).get("files", [])]
    parser = _Links()
    parser.feed(body.decode("utf-8", "replace"))
    return parser.names


def _version_of(filename: str) -> Version | None:
    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(filename)[1]
        return parse_sdist_filename(filename)[1]
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None


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
    url = f"{check_url.rstrip('/')}/{canonicalize_name(name)}/"
    request = urllib.request.Request(url, headers={"Accept": _ACCEPT})
    log.debug("GET %s", url)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
            content_type = response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return frozenset()
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
    try:
        names = _file_names(body, content_type)
    except (ValueError, KeyError, TypeError) as exc:
        raise IndexQueryError(
            f"{url} sent an answer that is not a simple index page", url
        ) from exc
    return frozenset(n for n in names if _version_of(n) == version)
