"""The one exception type every parser raises, so checks can report bad tool output uniformly."""

from __future__ import annotations


class ParseError(ValueError):
    """Output that does not have the expected shape; ``line`` is 1-based when known."""

    def __init__(self, message: str, line: int | None = None, source: str = "") -> None:
        where = ""
        if source and line is not None:
            where = f"{source} line {line}: "
        elif source:
            where = f"{source}: "
        elif line is not None:
            where = f"line {line}: "
        super().__init__(f"{where}{message}")
        self.line = line
        self.source = source
