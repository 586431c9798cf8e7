"""One rule for hiding secrets in connection targets shown to people.

Logs, ``repr``, error messages and the command lines of client programs show
which database something talks to; none of them may show a password. The
secrets of a PostgreSQL connection hide in more places than the password
part of a URL, and all of them are masked here (with `MASK`):

- the password of a URL's user information (``postgresql://u:pw@h/db``),
  multi-host URLs (``postgresql://u:pw@h1,h2/db``) included;
- query parameters that carry a secret (``?password=``, ``?sslpassword=``,
  any name that contains a word of `SECRET_WORDS`), percent-encoded
  names included (``?pass%77ord=``);
- settings with such a name inside ``options`` (``options=-c
  app.password=x`` or ``--app.password=x``): the value of the setting, not the
  whole option;
- the same keywords in libpq's ``key=value`` form (``host=h password='x y'``);
- URLs embedded in free text (an error message that quotes one).

SQLAlchemy ``URL`` objects, engines, connections, `Database` objects and
`macrostrat.database.dsn.DSN` are rendered first, then masked by the same
rule. The masking errs on the side of hiding too much: a malformed URL
whose user information cannot be told apart from its host is masked from
the first ``:`` of the user information to the ``@``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, unquote_plus

from sqlalchemy import URL

from ._connectable import engine_of

__all__ = [
    "MASK",
    "SECRET_WORDS",
    "is_secret_key",
    "is_secret_parameter",
    "options_have_secret",
    "redact",
    "redact_options",
    "redact_query",
    "redact_text",
    "scrub",
    "url_secrets",
]

MASK = "***"
"""What a secret is replaced with."""

SECRET_WORDS: tuple[str, ...] = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "credential",
    "apikey",
    "api_key",
)
"""A parameter or setting whose name contains one of these words is a secret.

That covers libpq's ``password``, ``sslpassword`` and
``oauth_client_secret`` and settings such as ``app.password``.
"""

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
# A URI quoted in a message ends before blanks, quotes and closing punctuation.
_EMBEDDED_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]*[^\s'\"<>.,;:)\]]")
# libpq's key=value form: a value is quoted ('...' with backslash escapes,
# possibly unterminated) or a run of non-blank characters (backslash escapes).
_KEYWORD_VALUE = re.compile(
    r"""(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*"""
    r"""(?P<value>'(?:[^'\\]|\\.)*(?:'|\\?$)|(?:[^\s'\\]|\\.)*)""",
    re.DOTALL,
)
_STARTS_KEYWORD_VALUE = re.compile(r"\s*[A-Za-z_][A-Za-z0-9_]*\s*=")
# A server setting inside ``options``: ``-c name=value``, ``-cname=value`` or
# ``--name=value``; values may hold backslash-escaped blanks.
_OPTION_SETTING = re.compile(
    r"(?P<lead>(?:^|(?<=\s))(?:-c\s*|--))(?P<name>[^\s=\\]+)="
    r"(?P<value>(?:\\.|[^\s\\])*)",
    re.DOTALL,
)


def is_secret_key(name: str) -> bool:
    """Whether the parameter or setting ``name`` carries a secret.

    The name is compared case-insensitively against `SECRET_WORDS`
    (``password``, ``sslpassword``, ``app.api_token``... are secrets;
    ``passfile`` and ``sslkey``, which name files, are not).

    Parameters:
        name: a connection parameter or a server setting name.
    """
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def options_have_secret(options: str) -> bool:
    """Whether libpq's ``options`` string sets a setting with a secret name.

    Parameters:
        options: the value of the ``options`` parameter (decoded), e.g.
            ``"-c search_path=x -c app.password=y"``.
    """
    return any(is_secret_key(m["name"]) for m in _OPTION_SETTING.finditer(options))


def redact_options(options: str) -> str:
    """``options`` with the values of secret settings replaced by `MASK`.

    ``-c app.password=x -c search_path=s`` becomes ``-c app.password=***
    -c search_path=s``; settings with other names are kept.

    Parameters:
        options: the value of the ``options`` parameter (decoded).
    """

    def mask(match: re.Match[str]) -> str:
        if is_secret_key(match["name"]):
            return f"{match['lead']}{match['name']}={MASK}"
        return match.group(0)

    return _OPTION_SETTING.sub(mask, options)


def _values(value: Any) -> tuple[str, ...]:
    if isinstance(value, (tuple, list)):
        return tuple(str(v) for v in value)
    return (str(value),)


def is_secret_parameter(key: str, value: Any) -> bool:
    """Whether the connection parameter ``key=value`` carries a secret.

    True for a secret name (see `is_secret_key`) and for ``options`` that set
    a secret setting (see `options_have_secret`).

    Parameters:
        key: the parameter name (decoded).
        value: its value, or a tuple of values (a repeated parameter).
    """
    if is_secret_key(key):
        return True
    return key == "options" and any(options_have_secret(v) for v in _values(value))


def redact_query(query: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a URL's query parameters with the secrets masked.

    Secret parameters become `MASK` (a tuple of masks for a repeated one);
    ``options`` keep their other settings (see `redact_options`).

    Parameters:
        query: the parameters (values are strings or tuples of strings).
    """
    out: dict[str, Any] = {}
    for key, value in query.items():
        if is_secret_key(key):
            out[key] = tuple(MASK for _ in value) if isinstance(value, tuple) else MASK
        elif key == "options":
            masked = tuple(redact_options(v) for v in _values(value))
            out[key] = masked if isinstance(value, tuple) else masked[0]
        else:
            out[key] = value
    return out


def _userinfo_end(rest: str) -> int | None:
    """Where the user information of ``rest`` (a URI after ``://``) ends, or None.

    libpq and SQLAlchemy end it at the first ``@``, Python's ``urlsplit`` (and
    so `macrostrat.database.dsn`) at the last ``@`` before the path; the later
    of the two is taken, so that whatever any parser reads as a password is
    masked.
    """
    first = rest.find("@")
    if first == -1:
        return None
    netloc_end = len(rest)
    for stop in "/?#":
        index = rest.find(stop)
        if index != -1:
            netloc_end = min(netloc_end, index)
    return max(first, rest.rfind("@", 0, netloc_end))


def _redact_pair(pair: str) -> str:
    """One ``key=value`` of a URI query, masked if it carries a secret."""
    raw_key, sep, raw_value = pair.partition("=")
    if not sep:
        return pair
    key = unquote_plus(raw_key).strip()
    if is_secret_key(key):
        return f"{raw_key}={MASK}"
    if key == "options":
        options = unquote_plus(raw_value)
        if options_have_secret(options):
            return f"{raw_key}={quote(redact_options(options), safe='*=')}"
    return pair


def _redact_uri(text: str) -> str:
    """Mask a URI's user-information password and its secret query parameters."""
    scheme = _SCHEME.match(text)
    assert scheme is not None
    head, rest = text[: scheme.end()], text[scheme.end() :]
    end = _userinfo_end(rest)
    query_from = 0
    if end is not None:
        colon = rest.find(":", 0, end)
        if colon != -1 and not any(c in rest[:colon] for c in "/?#"):
            rest = f"{rest[: colon + 1]}{MASK}{rest[end:]}"
            query_from = colon + 1 + len(MASK)
    start = rest.find("?", query_from)
    if start == -1:
        return head + rest
    query, hash_, fragment = rest[start + 1 :].partition("#")
    pairs = "&".join(_redact_pair(p) for p in query.split("&"))
    return f"{head}{rest[: start + 1]}{pairs}{hash_}{fragment}"


def _unquote_keyword_value(value: str) -> str:
    if value.startswith("'"):
        value = value[1:-1] if value.endswith("'") and len(value) > 1 else value[1:]
    return re.sub(r"\\(.)", r"\1", value, flags=re.DOTALL)


def _quote_keyword_value(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def _redact_keyword_values(text: str) -> str:
    """Mask the secrets of libpq's ``key=value`` form (``host=h password=x``)."""

    def mask(match: re.Match[str]) -> str:
        key, value = match["key"], match["value"]
        prefix = match.group(0)[: match.start("value") - match.start()]
        if is_secret_key(key):
            return f"{prefix}{MASK}"
        plain = _unquote_keyword_value(value)
        if key == "options" and options_have_secret(plain):
            return f"{prefix}{_quote_keyword_value(redact_options(plain))}"
        if key == "dbname" and ("=" in plain or "://" in plain):
            masked = redact_text(plain)
            if masked != plain:
                return f"{prefix}{_quote_keyword_value(masked)}"
        return match.group(0)

    return _KEYWORD_VALUE.sub(mask, text)


def redact_text(text: str) -> str:
    """``text`` with the secrets of the connection strings in it masked.

    A whole URI (``postgresql://...``), a whole ``key=value`` connection
    string, or free text that quotes URIs (each URI in it is masked).

    Parameters:
        text: a connection string or a message.
    """
    if _SCHEME.match(text.lstrip()):
        stripped = text.lstrip()
        return text[: len(text) - len(stripped)] + _redact_uri(stripped)
    if _STARTS_KEYWORD_VALUE.match(text):
        return _redact_keyword_values(text)
    return _EMBEDDED_URI.sub(lambda m: _redact_uri(m.group(0)), text)


def redact(target: Any) -> str:
    """The connection target ``target`` as text, with every secret masked.

    This is the one rule for showing a connection target in logs, reprs,
    error messages and tool command lines.

    Parameters:
        target: a SQLAlchemy ``URL``, a URL or ``key=value`` connection
            string, a `macrostrat.database.dsn.DSN`, an ``Engine``, a
            ``Connection`` or anything with an ``engine`` attribute (a
            `Database`); anything else is shown with ``str()`` and masked as
            free text.
    """
    if isinstance(target, URL):
        return _redact_uri(target.render_as_string(hide_password=True))
    if isinstance(target, str):
        return redact_text(target)
    to_libpq = getattr(target, "to_libpq", None)
    if callable(to_libpq):  # a DSN
        return redact_text(str(to_libpq(hide_password=True)))
    url = getattr(target, "url", None)
    if isinstance(url, URL):  # an Engine
        return redact(url)
    engine = engine_of(target)  # a Connection's, a Database's
    if engine is None:  # another wrapper of an engine (an AsyncConnection)
        engine = getattr(target, "engine", None)
    if engine is not None and engine is not target:
        return redact(engine)
    return redact_text(str(target))


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every occurrence of the given secret values masked.

    For messages that come from elsewhere (a driver's error, a program's
    standard error): whatever quotes a known secret, in whatever form, loses
    it. Connection strings in the text are masked too (see `redact_text`).

    Parameters:
        text: the message.
        secrets: the secret values (None and empty strings are skipped).
    """
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        for form in {secret, quote(secret, safe="")}:
            # Only where it stands alone: a password "p" must not turn "port"
            # into "***ort" (an occurrence inside a longer word is not it).
            text = re.sub(
                rf"(?<![A-Za-z0-9]){re.escape(form)}(?![A-Za-z0-9])",
                MASK,
                text,
            )
    return redact_text(text)


def url_secrets(url: URL) -> list[str]:
    """The secret values a URL carries: its password and secret query values.

    Parameters:
        url: the URL.
    """
    found: list[str] = [] if url.password is None else [str(url.password)]
    for key, value in url.query.items():
        if is_secret_key(key):
            found.extend(_values(value))
        elif key == "options":
            for options in _values(value):
                for match in _OPTION_SETTING.finditer(options):
                    if is_secret_key(match["name"]):
                        found.append(match["value"])
    return found
