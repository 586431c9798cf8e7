from __future__ import annotations

import pytest

from macrostrat.utils import ApplicationError, BaseError, GitError
from macrostrat.utils.exc import __all__ as exc_all


def test_application_error_stores_message_and_details():
    err = ApplicationError("Database not found", details="Create it first")
    assert str(err) == "Database not found"
    assert err.message == "Database not found"
    assert err.details == "Create it first"
    assert err.args == ("Database not found",)


def test_details_default_to_none():
    assert ApplicationError("Oops").details is None


def test_render_without_details():
    assert ApplicationError("Oops").render() == "[danger]Oops[/]\n"


def test_render_with_details():
    rendered = ApplicationError("Oops", "Try again").render()
    assert rendered == "[danger]Oops[/]\n[details]Try again[/]\n"


def test_hierarchy_can_be_caught_as_base_error():
    with pytest.raises(BaseError):
        raise ApplicationError("Oops")
    assert issubclass(BaseError, Exception)
    assert issubclass(GitError, ApplicationError)


def test_module_all():
    assert set(exc_all) == {"ApplicationError", "BaseError", "GitError"}


@pytest.mark.parametrize(
    "text",
    [
        "install macrostrat.app_frame[db]",
        "[bold]not bold[/]",
        "path C:\\temp\\[x] and [#fff] and [@click]",
        "a [ lone bracket and list[0] and [1, 2]",
    ],
)
def test_render_escapes_square_brackets(text: str) -> None:
    """Upstream passed the text through as markup: ``[db]`` vanished when printed."""
    from rich.console import Console
    from rich.theme import Theme

    console = Console(
        theme=Theme({"danger": "red", "details": "dim"}),
        force_terminal=False,
        width=200,
    )
    with console.capture() as captured:
        console.print(ApplicationError(text, text).render(), end="")
    assert captured.get() == f"{text}\n{text}\n"
