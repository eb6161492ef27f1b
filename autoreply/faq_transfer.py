"""FAQ import/export as CSV (UTF-8 with BOM, so Excel opens Chinese correctly) and XLSX.

Columns: slug, question, alternatives (one per line, or separated by "|"), answer,
category, enabled. Chinese headers (编号, 问题, 相似问法, 答案, 分类, 启用) are accepted too.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import openpyxl

COLUMNS = ("slug", "question", "alternatives", "answer", "category", "enabled")
_ALIASES = {
    "编号": "slug",
    "id": "slug",
    "问题": "question",
    "标准问题": "question",
    "相似问法": "alternatives",
    "相似问题": "alternatives",
    "答案": "answer",
    "回答": "answer",
    "分类": "category",
    "启用": "enabled",
}
_FALSE = {"0", "false", "no", "否", "停用", "n"}


class FaqImportError(ValueError):
    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems[:10]))
        self.problems = list(problems)


@dataclass(frozen=True)
class FaqRow:
    slug: str
    question: str
    answer: str
    alternatives: tuple[str, ...] = ()
    category: str = ""
    enabled: bool = True
    channels: Mapping[str, object] = field(default_factory=dict)


def _rows_from(records: Iterable[Sequence[object]]) -> list[FaqRow]:
    it = iter(records)
    try:
        header = [str(h or "").strip().lstrip("\ufeff") for h in next(it)]
    except StopIteration:
        return []
    names = [_ALIASES.get(h, _ALIASES.get(h.lower(), h.lower())) for h in header]
    missing = [c for c in ("slug", "question", "answer") if c not in names]
    if missing:
        raise FaqImportError([f"missing column: {c}" for c in missing])
    rows: list[FaqRow] = []
    problems: list[str] = []
    seen: set[str] = set()
    for line, record in enumerate(it, start=2):
        values = {
            n: str(v).strip() if v is not None else "" for n, v in zip(names, record, strict=False)
        }
        if not any(values.values()):
            continue
        slug, question, answer = (
            values.get("slug", ""),
            values.get("question", ""),
            values.get("answer", ""),
        )
        if not slug or not question or not answer:
            problems.append(f"line {line}: slug, question and answer are required")
            continue
        if len(slug) > 64:
            problems.append(f"line {line}: slug longer than 64 characters")
            continue
        if slug in seen:
            problems.append(f"line {line}: slug {slug!r} appears twice")
            continue
        seen.add(slug)
        raw_alts = values.get("alternatives", "").replace("|", "\n")
        rows.append(
            FaqRow(
                slug=slug,
                question=question,
                answer=answer,
                alternatives=tuple(a.strip() for a in raw_alts.splitlines() if a.strip()),
                category=values.get("category", ""),
                enabled=values.get("enabled", "").lower() not in _FALSE,
            )
        )
    if problems:
        raise FaqImportError(problems)
    return rows


def _records(rows: Iterable[FaqRow]) -> list[list[str]]:
    return [
        [
            r.slug,
            r.question,
            "\n".join(r.alternatives),
            r.answer,
            r.category,
            "1" if r.enabled else "0",
        ]
        for r in rows
    ]


def parse_csv(data: bytes) -> list[FaqRow]:
    """Rows of a CSV file (UTF-8, with or without BOM; GB18030 as Excel's fallback)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("gb18030")  # Excel on Chinese Windows saves CSV this way
    return _rows_from(csv.reader(io.StringIO(text)))


def to_csv(rows: Iterable[FaqRow]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    writer.writerows(_records(rows))
    return out.getvalue().encode("utf-8-sig")


def parse_xlsx(data: bytes) -> list[FaqRow]:
    """Rows of the first sheet of an XLSX workbook."""
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        sheet = book.worksheets[0]
        return _rows_from(sheet.iter_rows(values_only=True))
    finally:
        book.close()


def to_xlsx(rows: Iterable[FaqRow]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "FAQ"
    sheet.append(list(COLUMNS))
    for record in _records(rows):
        sheet.append(record)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
