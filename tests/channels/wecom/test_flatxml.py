"""flatxml reads WeCom XML exactly as an ElementTree walk would, and refuses DTDs."""

from __future__ import annotations

from pathlib import Path
from xml.etree.ElementTree import Element, fromstring  # noqa: S405  (trusted test oracle)

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels.base import MalformedPayload
from channels.wecom.flatxml import XmlMalformed, XmlRefused, read_fields
from channels.wecom.inbound import parse_xml

FIXTURES = Path(__file__).parent / "fixtures"


def tree_fields(body: bytes | str) -> tuple[str, dict[str, str]]:
    """The oracle: the ElementTree reading parse_xml used before flatxml."""
    root: Element = fromstring(body)  # noqa: S314  (trusted input)
    out: dict[str, str] = {}
    for child in root:
        if len(child):
            out[child.tag] = ",".join(
                (item.text or "").strip()
                for item in child.iter()
                if item is not child and item.text
            )
        else:
            out[child.tag] = (child.text or "").strip()
    return root.tag, out


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.xml")), ids=lambda p: p.stem)
def test_every_fixture_reads_as_elementtree_reads_it(path: Path) -> None:
    body = path.read_bytes()
    assert read_fields(body) == tree_fields(body)


def test_nested_member_lists_keep_their_items() -> None:
    body = (
        b"<xml><ChangeType><![CDATA[update]]></ChangeType><MemChangeList>"
        b"<Item><![CDATA[wm_a]]></Item><Item> wm_b </Item></MemChangeList></xml>"
    )
    assert parse_xml(body) == {"ChangeType": "update", "MemChangeList": "wm_a,wm_b"}


_names = st.sampled_from(["MsgType", "Content", "Item", "Event", "a", "B1"])
_texts = st.text(alphabet=st.sampled_from(list(" \n\tab中文<&>]")), max_size=6)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@st.composite
def _element(draw: st.DrawFn, depth: int) -> str:
    name = draw(_names)
    text = _escape(draw(_texts))
    children = draw(st.lists(_element(depth + 1), max_size=3)) if depth < 4 else []
    tail = _escape(draw(_texts)) if children else ""
    cdata = f"<![CDATA[{draw(_texts).replace(']]>', '')}]]>" if draw(st.booleans()) else ""
    return f"<{name}>{text}{cdata}{''.join(children)}{tail}</{name}>"


@given(st.lists(_element(2), max_size=6))
def test_generated_documents_read_as_elementtree_reads_them(fields: list[str]) -> None:
    body = ("<xml>" + "".join(fields) + "</xml>").encode()
    assert read_fields(body) == tree_fields(body)


def test_a_doctype_is_refused_before_any_entity_is_expanded() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><xml><A>&lol2;</A></xml>'
    )
    with pytest.raises(XmlRefused):
        read_fields(bomb)
    with pytest.raises(MalformedPayload, match="XML refused"):
        parse_xml(bomb)


def test_an_external_entity_without_a_dtd_is_malformed() -> None:
    with pytest.raises(XmlMalformed):
        read_fields(b"<xml><A>&xxe;</A></xml>")


@pytest.mark.parametrize("body", [b"", b"<xml><A></xml>", b"not xml", b"<xml></xml><x/>"])
def test_malformed_documents_are_malformed_payloads(body: bytes) -> None:
    with pytest.raises(MalformedPayload, match="malformed XML"):
        parse_xml(body)


def test_another_root_is_refused() -> None:
    with pytest.raises(MalformedPayload, match="unexpected XML root <html>"):
        parse_xml(b"<html><A>1</A></html>")
