"""Exception types shared by the macrostrat libraries, rooted in `BaseError`.

```text
BaseError                 an error the application is expected to catch and report
└── ApplicationError      a one-line message plus optional details; render() for Rich
    └── GitError          a `git` command failed (git_revision, git_has_changes)
```

This module is the error root of `macrostrat.utils` (its upstream path; the
other packages keep theirs in `errors.py`). Command-line front ends (such as
`macrostrat.app_frame`, whose `AppFrameError` derives from `ApplicationError`)
report an `ApplicationError` as a short message instead of a traceback.
Wrong argument types raise the builtin `TypeError`, not these.
"""

from __future__ import annotations

import re

__all__ = ["ApplicationError", "BaseError", "GitError"]


class BaseError(Exception):
    """Base class for errors an application is expected to catch and report.

    Raise subclasses of this class for conditions that are the user's or the
    environment's fault (bad input, missing resources) rather than bugs, so that
    a command-line front end can print them nicely instead of a traceback.
    """


class ApplicationError(BaseError):
    """An error with a short message and optional longer details.

    `str(error)` is the message alone. The details are meant for a second,
    less prominent line of output.

    Args:
        message: A one-line description of what went wrong.
        details: Optional extra explanation, e.g. how to fix the problem.

    Attributes:
        message: The message given to the constructor.
        details: The details given to the constructor, or `None`.
    """

    message: str
    details: str | None

    def __init__(self, message: str, details: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def render(self) -> str:
        """Render the error as Rich console markup.

        The message is wrapped in the `danger` style and the details (if any)
        in the `details` style; both are expected to be defined by the
        consumer's Rich theme. Without such a theme Rich prints the text
        unstyled. Square brackets in the message and details are escaped, so
        text such as ``install macrostrat.app_frame[db]`` prints as written
        instead of being taken for markup. Each part ends with a newline.

        Returns:
            The markup string, e.g. `"[danger]Oops[/]\\n[details]Try again[/]\\n"`.
        """
        text = f"[danger]{_escape_markup(self.message)}[/]\n"
        if self.details:
            text += f"[details]{_escape_markup(self.details)}[/]\n"
        return text


# What Rich would read as a tag: "[" then a letter, "#", "/" or "@", up to "]".
_TAG = re.compile(r"(\\*)(\[[a-zA-Z#/@][^[]*?\])")


def _escape_markup(text: str) -> str:
    """Escape ``text`` for Rich markup (without importing Rich).

    Each tag-like ``[...]`` gets a backslash; backslashes right before it are
    doubled so that they stay literal too.
    """
    return _TAG.sub(lambda m: m.group(1) * 2 + "\\" + m.group(2), text)


class GitError(ApplicationError):
    """A `git` command failed, e.g. because the directory is not in a repository.

    Raised by [`git_revision`][macrostrat.utils.shell.git_revision] and
    [`git_has_changes`][macrostrat.utils.shell.git_has_changes]. The message
    names the command, the directory and git's first line of error output; the
    details hold git's full error output.
    """
