"""Parser for the segment expression language.

    expr  := term (OR term)*
    term  := factor (AND factor)*
    factor:= NOT factor | "(" expr ")" | field op value
    op    := ":" | "=" | "!=" | ">" | ">=" | "<" | "<="
    value := "quoted string" | bare-word

Keywords are case-insensitive. Example:
    tag:"意向/询价" AND region:广东 AND NOT optout:sms
"""

from __future__ import annotations

from dataclasses import dataclass

from .ast import And, Cond, Node, Not, Or
from .errors import SegmentError

_OP_CHARS = ":=!<>"
_SPECIAL = set('()"') | set(_OP_CHARS)
KEYWORDS = {"AND", "OR", "NOT"}
MAX_LENGTH = 4000


@dataclass(frozen=True)
class Token:
    kind: str  # word | string | op | lparen | rparen | and | or | not | end
    text: str
    position: int


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch == "(":
            tokens.append(Token("lparen", ch, i))
            i += 1
        elif ch == ")":
            tokens.append(Token("rparen", ch, i))
            i += 1
        elif ch == '"':
            start, i, chars = i, i + 1, []
            while i < len(text) and text[i] != '"':
                if text[i] == "\\" and i + 1 < len(text):
                    i += 1
                chars.append(text[i])
                i += 1
            if i >= len(text):
                raise SegmentError('unterminated string: a closing " is missing', position=start)
            tokens.append(Token("string", "".join(chars), start))
            i += 1
        elif ch in _OP_CHARS:
            two = text[i : i + 2]
            op = two if two in (">=", "<=", "!=") else ch
            if op == "!":
                raise SegmentError("'!' must be followed by '=' (use NOT to negate)", position=i)
            tokens.append(Token("op", op, i))
            i += len(op)
        else:
            start = i
            while i < len(text) and not text[i].isspace() and text[i] not in _SPECIAL:
                i += 1
            word = text[start:i]
            kind = word.upper().lower() if word.upper() in KEYWORDS else "word"
            tokens.append(Token(kind, word, start))
    tokens.append(Token("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def expr(self) -> Node:
        args = [self.term()]
        while self.peek().kind == "or":
            self.take()
            args.append(self.term())
        return args[0] if len(args) == 1 else Or(tuple(args))

    def term(self) -> Node:
        args = [self.factor()]
        while True:
            token = self.peek()
            if token.kind == "and":
                self.take()
                args.append(self.factor())
            elif token.kind in ("word", "string", "not", "lparen"):
                raise SegmentError(
                    f"expected AND or OR before {token.text!r}", position=token.position
                )
            else:
                break
        return args[0] if len(args) == 1 else And(tuple(args))

    def factor(self) -> Node:
        token = self.take()
        if token.kind == "not":
            return Not(self.factor())
        if token.kind == "lparen":
            inner = self.expr()
            closing = self.take()
            if closing.kind != "rparen":
                raise SegmentError(
                    f"expected ')' to close the '(' at column {token.position + 1}",
                    position=closing.position,
                )
            return inner
        if token.kind == "word":
            op = self.take()
            if op.kind != "op":
                raise SegmentError(
                    f"expected an operator (: = != > >= < <=) after {token.text!r}",
                    position=op.position,
                )
            value = self.take()
            if value.kind not in ("word", "string"):
                what = "the end" if value.kind == "end" else repr(value.text)
                raise SegmentError(
                    f"expected a value after '{token.text}{op.text}', found {what}",
                    position=value.position,
                )
            return Cond(token.text.lower(), op.text, value.text, token.position)
        if token.kind == "end":
            raise SegmentError(
                "the expression ends where a condition was expected", position=token.position
            )
        raise SegmentError(f"expected a condition, found {token.text!r}", position=token.position)


def parse(text: str) -> Node:
    """Parse an expression into its AST; SegmentError says what is wrong and where."""
    if len(text) > MAX_LENGTH:
        raise SegmentError(f"expression longer than {MAX_LENGTH} characters")
    if not text.strip():
        raise SegmentError("the expression is empty", position=0)
    parser = _Parser(text)
    node = parser.expr()
    trailing = parser.peek()
    if trailing.kind != "end":
        raise SegmentError(f"unexpected {trailing.text!r}", position=trailing.position)
    return node
