"""WeCom's XML (`<xml><Field>value</Field>…</xml>`) read straight into a flat dict.

Every callback is parsed twice (the envelope, then the decrypted message), on the path a
provider's 5-second window is on; building an ElementTree for a dozen flat fields costs
~50 µs a parse, expat's callbacks into one dict a fraction of that. Safety is the same as
defusedxml's `forbid_dtd`: a document with a DOCTYPE is refused before any entity could
be declared, so entity bombs and external entities cannot exist; an undeclared entity
reference is a parse error.
"""

from __future__ import annotations

from xml.parsers import expat


class XmlRefused(ValueError):
    """The document declares a DTD (refused unread: the road to entity tricks)."""


class XmlMalformed(ValueError):
    """Not well-formed XML."""


class _Reader:
    """One document's expat callbacks. Depth 1 is the root, depth 2 its fields; a field
    with elements inside is kept as the texts of those elements joined by commas."""

    def __init__(self) -> None:
        self.root = ""
        self.fields: dict[str, str] = {}
        self.depth = 0
        self.field = ""
        self.text: list[str] = []  # the open field's character data
        self.nested = False
        # descendants of the open field, in document order: [text before first child]
        self.inner: list[list[str]] = []
        self.open: list[list[str] | None] = []  # per open descendant: its text, until a child

    def start(self, name: str, _attrs: object) -> None:
        self.depth += 1
        tag = _tag(name)
        if self.depth == 1:
            self.root = tag
        elif self.depth == 2:
            self.field, self.text, self.nested, self.inner, self.open = tag, [], False, [], []
        else:
            self.nested = True
            if self.open:
                self.open[-1] = None  # a child started: the parent's text is complete
            slot: list[str] = []
            self.inner.append(slot)
            self.open.append(slot)

    def end(self, _name: str) -> None:
        if self.depth == 2:
            if self.nested:
                joined = ",".join("".join(t).strip() for t in self.inner if "".join(t))
                self.fields[self.field] = joined
            else:
                self.fields[self.field] = "".join(self.text).strip()
        elif self.depth > 2:
            self.open.pop()
        self.depth -= 1

    def data(self, text: str) -> None:
        if self.depth == 2 and not self.nested:
            self.text.append(text)
        elif self.depth > 2 and self.open and self.open[-1] is not None:
            self.open[-1].append(text)


def _tag(name: str) -> str:
    # expat reports "uri}local" with namespace_separator="}"; ElementTree's "{uri}local"
    return "{" + name if "}" in name else name


def _refuse_dtd(*_args: object) -> None:
    raise XmlRefused("DTDForbidden")


def read_fields(body: bytes | str) -> tuple[str, dict[str, str]]:
    """(root tag, {field: text}) of a flat XML document; raises XmlRefused/XmlMalformed."""
    reader = _Reader()
    parser = expat.ParserCreate(namespace_separator="}")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.CharacterDataHandler = reader.data
    try:
        parser.Parse(body, True)
    except expat.ExpatError as exc:
        raise XmlMalformed(str(exc)) from exc
    return reader.root, reader.fields
