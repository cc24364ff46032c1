"""`aiconformance` / `python -m pytest_aiconformance`: run the installed checks.

Outside a checkout there is no pyproject.toml with our ini settings, so this passes them
(JUnit evidence in <system-out>, passing tests included) and points pytest at the
installed checks package (pytest_aiconformance.checks). Every other argument goes to
pytest, with our options' values joined to their flags (`--kubeconfig PATH` ->
`--kubeconfig=PATH`): pytest picks its rootdir before it knows our options and would take
PATH for a test path.

`aiconformance validate DIR` is the one exception: it checks a CNCF submission directory
offline (pytest_aiconformance.validator.rules) and runs no checks.
"""

from __future__ import annotations

import sys

import pytest

INI_DEFAULTS = (
    "junit_family=xunit1",
    "junit_logging=system-out",
    "junit_log_passing_tests=true",
    "junit_suite_name=ai-conformance",
)


def main(argv: list[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["validate"]:
        from pytest_aiconformance.validator.rules import main as validate

        return validate(given[1:])
    from pytest_aiconformance.plugin import VALUED_FLAGS
    from pytest_aiconformance.run.option_values import join_values

    args = join_values(given, set(VALUED_FLAGS))
    ini = [item for pair in INI_DEFAULTS for item in ("-o", pair)]
    # This module lives in the plugin's package, so the plugin is imported before pytest can
    # rewrite its asserts; the plugin has none that need rewriting.
    quiet = ["-W", "ignore::pytest.PytestAssertRewriteWarning"]
    return int(pytest.main([*ini, *quiet, "-p", "no:cacheprovider", "--pyargs",
                            "pytest_aiconformance.checks", *args]))


if __name__ == "__main__":
    sys.exit(main())
