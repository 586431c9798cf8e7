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
