"""The one exception the lab raises.

Every failure a user can hit (no Go toolchain, a busy port, a lab of another shape already
running) is reported as a ``LabError`` with a single-line message, so the CLI can print it
without a traceback and pytest fixtures can surface it as a setup error that says what to do.
"""

from __future__ import annotations


class LabError(Exception):
    """A lab operation failed; ``str(err)`` is one line meant for the user."""

    def __init__(self, message: str) -> None:
        # Keep the message on one line: it ends up on a terminal or in a pytest error header.
        super().__init__(" ".join(message.split()))
