"""Segments (客户分群): a small expression language and its JSON AST, compiled to SQL."""

from .ast import And, Cond, Node, Not, Or, from_json, to_json, to_text
from .errors import SegmentError
from .parser import parse

__all__ = [
    "And",
    "Cond",
    "Node",
    "Not",
    "Or",
    "SegmentError",
    "from_json",
    "parse",
    "to_json",
    "to_text",
]
