"""Checks on untrusted input to the auth routes.

Every value a client sends is checked here before it reaches a password check
or the database: PostgreSQL refuses NUL characters in text parameters and
psycopg cannot encode lone surrogates, so such values would otherwise surface
as server errors (500) instead of client errors.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from ..errors import InvalidRequestError

__all__ = [
    "MAX_LOGIN_BODY_BYTES",
    "MAX_PASSWORD_LENGTH",
    "MAX_USERNAME_LENGTH",
    "check_text",
    "read_json_object",
    "text_problem",
]

MAX_USERNAME_LENGTH = 255
"""The longest user name ``/login`` accepts, in characters."""

MAX_PASSWORD_LENGTH = 1024
"""The longest password ``/login`` accepts, in characters."""

MAX_LOGIN_BODY_BYTES = 16 * 1024
"""The largest ``/login`` body read, in bytes (413 beyond)."""


def text_problem(value: object, *, max_length: int) -> str | None:
    """Why ``value`` cannot be used as request text, or None if it can.

    Usable text is a ``str`` of at most ``max_length`` characters, without NUL
    characters, that encodes as UTF-8 (no lone surrogates, which JSON escapes
    such as ``"\\ud800"`` can produce).

    Parameters:
        value: the value to check.
        max_length: the most characters allowed.
    """
    if not isinstance(value, str):
        return "must be a string"
    if len(value) > max_length:
        return f"must be at most {max_length} characters long"
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text"
    return None


def check_text(
    value: object, name: str, *, max_length: int, status_code: int = 422
) -> str:
    """Return ``value`` if it is usable text, else raise `InvalidRequestError`.

    See `text_problem` for what is usable. The error message names the field
    but never repeats the value.

    Parameters:
        value: the value to check.
        name: the field name, for the message.
        max_length: the most characters allowed.
        status_code: the status the error carries (422 by default).
    """
    problem = text_problem(value, max_length=max_length)
    if problem is not None or not isinstance(value, str):
        raise InvalidRequestError(f"{name} {problem}", status_code)
    return value


async def _read_body(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError as err:
            raise InvalidRequestError("invalid Content-Length header", 400) from err
        if size > max_bytes:
            raise InvalidRequestError(
                f"request body is larger than {max_bytes} bytes", 413
            )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise InvalidRequestError(
                f"request body is larger than {max_bytes} bytes", 413
            )
    return bytes(body)


async def read_json_object(request: Request, *, max_bytes: int) -> dict[str, Any]:
    """Read the request body as a UTF-8 JSON object, refusing anything else.

    At most ``max_bytes`` are read (an announced or actual larger body gives
    413 without reading the rest). Bodies that are not UTF-8, not JSON, nested
    too deeply for the parser, hold integers too long to convert, or are not a
    JSON object give 422.

    Parameters:
        request: the request.
        max_bytes: the largest body accepted.

    Raises:
        InvalidRequestError: with the status to answer.
    """
    body = await _read_body(request, max_bytes)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InvalidRequestError("request body is not UTF-8 text") from err
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:
        # ValueError covers JSONDecodeError and integers over Python's
        # digit limit; RecursionError deeply nested arrays.
        raise InvalidRequestError("request body is not valid JSON") from err
    if not isinstance(data, dict):
        raise InvalidRequestError("request body must be a JSON object")
    return data
