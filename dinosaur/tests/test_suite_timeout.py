"""A hang fails one test, never the whole run (issue 16).

The workspace's pytest configuration sets a per-test limit (pytest-timeout);
this checks that it is set and that a test going past it fails alone while
the tests after it still run.
"""

from __future__ import annotations

import pytest


def test_the_suite_has_a_per_test_limit(request: pytest.FixtureRequest) -> None:
    limit = float(request.config.getini("timeout") or 0)
    assert 0 < limit <= 600


def test_a_hanging_test_fails_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import time

        def test_hangs():
            time.sleep(30)

        def test_after():
            assert True
        """
    )
    result = pytester.runpytest_subprocess("--timeout=1")  # the plugin autoloads
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*Timeout*"])
