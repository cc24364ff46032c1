"""Option values written after a space (`--kubeconfig PATH`) joined to their flag
(`--kubeconfig=PATH`): pytest picks its rootdir before it knows our options and would take
the path for a test path.
"""

from __future__ import annotations

import dataclasses

import pytest


def join_option_values(config: pytest.Config, flags: set[str]) -> None:
    """Rewrite `--opt value` as `--opt=value` in the invocation args the xdist workers get.

    Workers parse the controller's invocation args before every option is registered there,
    so a separated value (e.g. `--aic-report-dir /tmp/r`) would be taken for a test path.
    """
    args = [str(a) for a in config.invocation_params.args]
    joined = join_values(args, flags)
    if joined != args:
        config.invocation_params = dataclasses.replace(config.invocation_params,
                                                       args=tuple(joined))


def join_values(args: list[str], flags: set[str]) -> list[str]:
    """`[--opt, value]` -> `[--opt=value]` for the given flags; everything else unchanged."""
    out: list[str] = []
    i = 0
    while i < len(args):
        if args[i] == "--":  # the rest are positional
            out.extend(args[i:])
            break
        if args[i] in flags and i + 1 < len(args):
            out.append(f"{args[i]}={args[i + 1]}")
            i += 2
            continue
        out.append(args[i])
        i += 1
    return out
