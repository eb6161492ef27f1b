"""The segment expression language: precedence, JSON form, round trips, clear errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tagging.segments import (
    And,
    Cond,
    Node,
    Not,
    Or,
    SegmentError,
    from_json,
    parse,
    to_json,
    to_text,
)


def test_and_binds_tighter_than_or() -> None:
    assert parse("a:1 OR b:2 AND c:3") == Or(
        (Cond("a", ":", "1"), And((Cond("b", ":", "2"), Cond("c", ":", "3"))))
    )


def test_keywords_are_case_insensitive_and_fields_lowercased() -> None:
    assert parse("Tag:x and not Region:y") == And(
        (Cond("tag", ":", "x"), Not(Cond("region", ":", "y")))
    )


def test_quoted_values_keep_spaces_and_escapes() -> None:
    assert parse(r'tag:"意向/询 \"价\""') == Cond("tag", ":", '意向/询 "价"')


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("tag:", "expected a value", 5),
        ("tag x", "expected an operator", 5),
        ("(a:1", r"expected '\)'", 5),
        ("a:1 b:2", "expected AND or OR", 5),
        ('a:"x', "unterminated string", 3),
        ("a:1 )", r"unexpected '\)'", 5),
        ("", "empty", 1),
    ],
)
def test_errors_say_what_and_where(text: str, message: str, column: int) -> None:
    with pytest.raises(SegmentError, match=message) as info:
        parse(text)
    assert info.value.position is not None and info.value.position + 1 == column


def test_json_errors_name_the_path() -> None:
    with pytest.raises(SegmentError, match=r"\$\.and\[1\]\.op"):
        from_json(
            {"and": [{"field": "tag", "value": "a/b"}, {"field": "r", "op": "~", "value": 1}]}
        )


_values = st.text(alphabet='广东意向询价ab1/- _"', min_size=1, max_size=8)
_conds = st.builds(
    Cond,
    st.sampled_from(["tag", "region", "age", "r", "last_contact"]),
    st.sampled_from([":", "!=", ">", ">=", "<", "<="]),
    _values,
)
_nodes: st.SearchStrategy[Node] = st.recursive(
    _conds,
    lambda inner: st.one_of(
        st.builds(lambda a: And(tuple(a)), st.lists(inner, min_size=2, max_size=3)),
        st.builds(lambda a: Or(tuple(a)), st.lists(inner, min_size=2, max_size=3)),
        st.builds(Not, inner),
    ),
    max_leaves=8,
)


def _flat(node: Node) -> Node:
    """Nested ANDs (ORs) read back flattened: a AND (b AND c) is a AND b AND c."""
    if isinstance(node, (And, Or)):
        args: list[Node] = []
        for arg in map(_flat, node.args):
            args.extend(arg.args if type(arg) is type(node) else (arg,))  # type: ignore[union-attr]
        return type(node)(tuple(args))
    if isinstance(node, Not):
        return Not(_flat(node.arg))
    return node


@given(_nodes)
def test_text_and_json_forms_round_trip(node: Node) -> None:
    assert _flat(parse(to_text(node))) == _flat(node)
    assert from_json(to_json(node)) == node
