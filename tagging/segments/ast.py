"""Segment AST: And / Or / Not over conditions `field op value`.

JSON form (what the console's visual builder produces and stores):
  {"and": [node, …]}, {"or": [node, …]}, {"not": node},
  {"field": "tag", "op": ":", "value": "意向/询价"}
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from .errors import SegmentError

OPS = (":", "=", "!=", ">", ">=", "<", "<=")


@dataclass(frozen=True)
class Cond:
    field: str
    op: str
    value: str
    # where it started in the text, for error messages; not part of the meaning
    position: int | None = dc_field(default=None, compare=False)


@dataclass(frozen=True)
class And:
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    arg: Node


Node = Cond | And | Or | Not


def to_json(node: Node) -> dict[str, Any]:
    if isinstance(node, Cond):
        return {"field": node.field, "op": node.op, "value": node.value}
    if isinstance(node, And):
        return {"and": [to_json(arg) for arg in node.args]}
    if isinstance(node, Or):
        return {"or": [to_json(arg) for arg in node.args]}
    return {"not": to_json(node.arg)}


def from_json(data: Any, path: str = "$") -> Node:
    """Read the builder's JSON, saying exactly where it is malformed."""
    if not isinstance(data, dict):
        raise SegmentError("expected an object", path=path)
    if "field" in data:
        extra = set(data) - {"field", "op", "value"}
        if extra:
            raise SegmentError(f"unexpected keys {sorted(extra)}", path=path)
        field, op, value = data.get("field"), data.get("op", ":"), data.get("value")
        if not isinstance(field, str) or not field:
            raise SegmentError("'field' must be a non-empty string", path=f"{path}.field")
        if op not in OPS:
            raise SegmentError(f"'op' must be one of {', '.join(OPS)}", path=f"{path}.op")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise SegmentError("'value' must be a string or a number", path=f"{path}.value")
        return Cond(field, op, str(value))
    if len(data) != 1:
        raise SegmentError("expected exactly one of 'and', 'or', 'not' or a condition", path=path)
    (key, value), *_ = data.items()
    if key == "not":
        return Not(from_json(value, f"{path}.not"))
    if key in ("and", "or"):
        if not isinstance(value, list) or not value:
            raise SegmentError(f"'{key}' needs a non-empty list", path=f"{path}.{key}")
        args = tuple(from_json(arg, f"{path}.{key}[{i}]") for i, arg in enumerate(value))
        if len(args) == 1:
            return args[0]
        return And(args) if key == "and" else Or(args)
    raise SegmentError(f"unknown node {key!r}", path=path)


def _quote(value: str) -> str:
    bare = value.upper() not in ("AND", "OR", "NOT")
    if bare and value and all(ch.isalnum() or ch in "-_./*+" for ch in value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def to_text(node: Node) -> str:
    """The expression-language form of an AST (the builder shows it under the blocks)."""
    if isinstance(node, Cond):
        return f"{node.field}{node.op}{_quote(node.value)}"
    if isinstance(node, Not):
        inner = to_text(node.arg)
        return f"NOT {inner}" if isinstance(node.arg, (Cond, Not)) else f"NOT ({inner})"
    word = " AND " if isinstance(node, And) else " OR "
    parts = []
    for arg in node.args:
        text = to_text(arg)
        # AND binds tighter than OR: only an OR inside an AND needs brackets
        needs = isinstance(arg, (And, Or)) and not (isinstance(node, Or) and isinstance(arg, And))
        parts.append(f"({text})" if needs else text)
    return word.join(parts)
