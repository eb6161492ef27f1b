"""The one error a segment expression, AST or compilation reports, with where it is."""

from __future__ import annotations


class SegmentError(ValueError):
    """A segment that cannot be understood; `position` is the 0-based offset in the text,
    `path` the place in the JSON AST (e.g. "and[1].value")."""

    def __init__(self, message: str, *, position: int | None = None, path: str = "") -> None:
        self.message = message
        self.position = position
        self.path = path
        where = ""
        if position is not None:
            where = f" at column {position + 1}"
        elif path:
            where = f" at {path}"
        super().__init__(f"{message}{where}")

    def pointer(self, text: str) -> str:
        """The expression with a caret under the offending column, for the console."""
        if self.position is None:
            return text
        return f"{text}\n{' ' * _display_width(text[: self.position])}^"


def _display_width(text: str) -> int:
    # CJK characters take two columns in a monospace console
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)
