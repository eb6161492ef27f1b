"""Customer import and export (CSV / XLSX). An import is always dry-run first: the
report lists every problem as (row, field, reason), the exact-match customers that will
be updated instead of duplicated, and similar customers worth a look."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import openpyxl
from sqlalchemy import ColumnElement, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.models import Customer

from .merge import DuplicateSuggestion, find_duplicates
from .models import CustomerHobby, CustomerProfile, CustomerTag, Tag, TagGroup
from .phones import normalise_phone
from .profiles import (
    CleanProfile,
    apply_profile,
    custom_fields_by_key,
    fill_region_from_phone,
    validate_profile,
)
from .segments.compiler import customers_matching
from .tags import TagError, TagRef, Why, find_tag, tag_customer

MAX_ROWS = 50_000
# header → field; Chinese headers as staff write them in Excel
HEADERS = {
    "name": "name",
    "姓名": "name",
    "名称": "name",
    "客户名称": "name",
    "phone": "phone",
    "mobile": "phone",
    "手机": "phone",
    "手机号": "phone",
    "电话": "phone",
    "email": "email",
    "邮箱": "email",
    "unionid": "unionid",
    "gender": "gender",
    "性别": "gender",
    "birthday": "birthday",
    "生日": "birthday",
    "address": "address",
    "地址": "address",
    "province": "province",
    "省份": "province",
    "city": "city",
    "城市": "city",
    "occupation": "occupation",
    "职业": "occupation",
    "hobbies": "hobbies",
    "爱好": "hobbies",
    "intent": "intent",
    "意向": "intent",
    "意向等级": "intent",
    "age_bracket": "age_bracket",
    "年龄段": "age_bracket",
    "tags": "tags",
    "标签": "tags",
}
_PROFILE_FIELDS = (
    "gender",
    "birthday",
    "address",
    "province",
    "city",
    "occupation",
    "hobbies",
    "intent",
    "age_bracket",
)
EXPORT_ONLY = frozenset({"id", "RFM", "ABC", "创建时间"})
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ImportFileError(ValueError):
    """The file itself cannot be read (format, encoding, size)."""


@dataclass(frozen=True)
class RowError:
    row: int  # 1-based data row, as the spreadsheet shows it minus the header
    field: str
    reason: str


@dataclass
class RowPlan:
    row: int
    name: str
    phone: str | None
    email: str | None
    unionid: str | None
    profile: CleanProfile
    tags: list[Tag]
    existing_id: int | None = None  # exact match: update this customer
    similar: list[DuplicateSuggestion] = field(default_factory=list)


@dataclass
class ImportReport:
    dry_run: bool
    rows: int = 0
    valid: int = 0
    created: int = 0
    updated: int = 0
    errors: list[RowError] = field(default_factory=list)
    similar: dict[int, list[DuplicateSuggestion]] = field(default_factory=dict)
    will_update: dict[int, int] = field(default_factory=dict)  # row → existing customer id

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "rows": self.rows,
            "valid": self.valid,
            "created": self.created,
            "updated": self.updated,
            "errors": [e.__dict__ for e in self.errors],
            "similar": {row: [s.__dict__ for s in found] for row, found in self.similar.items()},
            "will_update": self.will_update,
        }


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel stores 13800138000 as a float
    return str(value).strip()


def read_table(data: bytes, filename: str) -> list[dict[str, str]]:
    """Rows of a CSV (UTF-8 or GB18030, as Excel in China saves it) or XLSX file, keyed by
    the header cells as written."""
    if filename.lower().endswith(".xlsx"):
        try:
            book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:  # noqa: BLE001  # openpyxl raises many kinds for a bad file
            raise ImportFileError(f"not a readable XLSX file: {exc}") from exc
        sheet = book.worksheets[0]
        rows = [[_cell_text(v) for v in row] for row in sheet.iter_rows(values_only=True)]
        book.close()
    elif filename.lower().endswith(".csv"):
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                text = data.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise ImportFileError("the CSV is neither UTF-8 nor GB18030 text")
        rows = [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(text))]
    else:
        raise ImportFileError("upload a .csv or .xlsx file")
    if not rows:
        raise ImportFileError("the file is empty")
    header, body = rows[0], [row for row in rows[1:] if any(row)]
    if len(body) > MAX_ROWS:
        raise ImportFileError(f"more than {MAX_ROWS} rows: split the file")
    return [dict(zip(header, row + [""] * (len(header) - len(row)), strict=False)) for row in body]


async def _plan_row(
    session: AsyncSession,
    index: int,
    raw: Mapping[str, str],
    custom: Mapping[str, Any],
    today: date,
    errors: list[RowError],
) -> RowPlan | None:
    values: dict[str, str] = {}
    for header, value in raw.items():
        if header.strip() in EXPORT_ONLY:
            continue  # an exported file can be edited and imported again
        key = HEADERS.get(header.strip().lower(), HEADERS.get(header.strip()))
        if key is None:
            key = next(
                (k for k, f in custom.items() if header.strip() in (k, f.label)), header.strip()
            )
        values[key] = value.strip()
    before = len(errors)
    phone = None
    if values.get("phone"):
        phone = normalise_phone(values["phone"])
        if phone is None:
            errors.append(RowError(index, "phone", f"{values['phone']!r} is not a phone number"))
    email = values.get("email", "").lower() or None
    if email and not _EMAIL.match(email):
        errors.append(RowError(index, "email", f"{email!r} is not an email address"))
    name = values.get("name", "") or phone or email or ""
    if not name:
        errors.append(RowError(index, "name", "a row needs a name, phone or email"))
    profile_raw = {k: v for k, v in values.items() if k in _PROFILE_FIELDS or k in custom}
    profile, profile_errors = validate_profile(profile_raw, custom, today)
    errors.extend(RowError(index, e.field, e.reason) for e in profile_errors)
    unknown = (
        set(values)
        - set(_PROFILE_FIELDS)
        - set(custom)
        - {
            "name",
            "phone",
            "email",
            "unionid",
            "tags",
        }
    )
    errors.extend(RowError(index, col, "unknown column") for col in sorted(unknown) if values[col])
    tags: list[Tag] = []
    for path in filter(None, re.split(r"[;；,，]", values.get("tags", ""))):
        try:
            tag = await find_tag(session, TagRef.parse(path))
        except TagError as exc:
            errors.append(RowError(index, "tags", str(exc)))
            continue
        if tag is None:
            errors.append(RowError(index, "tags", f"unknown tag {path.strip()!r}"))
        else:
            tags.append(tag)
    if len(errors) > before:
        return None
    plan = RowPlan(index, name, phone, email, values.get("unionid") or None, profile, tags)
    suggestions = await find_duplicates(
        session, name=name, phone=phone, email=email, unionid=plan.unionid
    )
    exact = [s for s in suggestions if set(s.reasons) & {"phone", "email", "unionid"}]
    plan.existing_id = exact[0].customer_id if exact else None
    plan.similar = [s for s in suggestions if s.customer_id != plan.existing_id]
    return plan


async def import_customers(
    session: AsyncSession,
    data: bytes,
    filename: str,
    *,
    today: date,
    dry_run: bool = True,
    actor_id: int | None = None,
) -> ImportReport:
    """Validate (and unless dry_run, apply) a customer file. Rows with errors are skipped;
    a row matching an existing customer by phone/email/unionid updates that customer."""
    table = read_table(data, filename)
    custom = await custom_fields_by_key(session)
    report = ImportReport(dry_run=dry_run, rows=len(table))
    seen: dict[str, int] = {}
    plans: list[RowPlan] = []
    for index, raw in enumerate(table, start=1):
        plan = await _plan_row(session, index, raw, custom, today, report.errors)
        if plan is None:
            continue
        twin = next((seen[k] for k in (plan.phone, plan.email) if k and k in seen), None)
        if twin is not None:
            report.errors.append(RowError(index, "phone", f"the same person as row {twin}"))
            continue
        for key in (plan.phone, plan.email):
            if key:
                seen[key] = index
        plans.append(plan)
        if plan.existing_id is not None:
            report.will_update[index] = plan.existing_id
        if plan.similar:
            report.similar[index] = plan.similar
    report.valid = len(plans)
    if dry_run:
        return report
    for plan in plans:
        await _apply_row(session, plan, actor_id, report)
    return report


async def _apply_row(
    session: AsyncSession, plan: RowPlan, actor_id: int | None, report: ImportReport
) -> None:
    if plan.existing_id is not None:
        customer = await session.get(Customer, plan.existing_id)
        assert customer is not None
        customer.phone = customer.phone or plan.phone
        customer.email = customer.email or plan.email
        customer.wecom_unionid = customer.wecom_unionid or plan.unionid
        report.updated += 1
    else:
        customer = Customer(
            display_name=plan.name[:200],
            phone=plan.phone,
            email=plan.email,
            wecom_unionid=plan.unionid,
        )
        session.add(customer)
        await session.flush()
        report.created += 1
    await apply_profile(session, customer.id, plan.profile)
    await fill_region_from_phone(session, customer)
    for tag in plan.tags:
        await tag_customer(
            session, customer.id, tag.id, Why("import", actor_id=actor_id, reason="customer import")
        )


EXPORT_COLUMNS = (
    "id",
    "姓名",
    "手机",
    "邮箱",
    "省份",
    "城市",
    "性别",
    "生日",
    "年龄段",
    "职业",
    "意向",
    "爱好",
    "标签",
    "RFM",
    "ABC",
    "创建时间",
)


async def export_rows(
    session: AsyncSession, condition: ColumnElement[bool] | None = None, batch: int = 1000
) -> list[list[str]]:
    """Rows (header first) of the live customers matching `condition` (a compiled segment)."""
    rows: list[list[str]] = [list(EXPORT_COLUMNS)]
    after = 0
    while True:
        page = (
            await session.execute(
                customers_matching(
                    condition if condition is not None else true(), Customer, CustomerProfile
                )
                .outerjoin(CustomerProfile, CustomerProfile.customer_id == Customer.id)
                .where(Customer.id > after)
                .order_by(Customer.id)
                .limit(batch)
            )
        ).all()
        if not page:
            return rows
        ids = [c.id for c, _ in page]
        tags: dict[int, list[str]] = {}
        for cid, group, name in await session.execute(
            select(CustomerTag.customer_id, TagGroup.name, Tag.name)
            .join(Tag, Tag.id == CustomerTag.tag_id)
            .join(TagGroup, TagGroup.id == Tag.group_id)
            .where(CustomerTag.customer_id.in_(ids))
            .order_by(TagGroup.name, Tag.name)
        ):
            tags.setdefault(cid, []).append(f"{group}/{name}")
        hobbies: dict[int, list[str]] = {}
        for cid, hobby in await session.execute(
            select(CustomerHobby.customer_id, CustomerHobby.hobby)
            .where(CustomerHobby.customer_id.in_(ids))
            .order_by(CustomerHobby.hobby)
        ):
            hobbies.setdefault(cid, []).append(hobby)
        for customer, profile in page:
            p = profile
            rfm = f"{p.rfm_r}{p.rfm_f}{p.rfm_m}" if p is not None and p.rfm_r else ""
            rows.append(
                [
                    str(customer.id),
                    customer.display_name,
                    customer.phone or "",
                    customer.email or "",
                    (p.province or "") if p else "",
                    (p.city or "") if p else "",
                    {"male": "男", "female": "女"}.get(p.gender or "", "") if p else "",
                    p.birth_date.isoformat() if p and p.birth_date else "",
                    (p.age_bracket or "") if p else "",
                    (p.occupation or "") if p else "",
                    (p.intent_level or "") if p else "",
                    ";".join(hobbies.get(customer.id, [])),
                    ";".join(tags.get(customer.id, [])),
                    rfm,
                    (p.abc_class or "") if p else "",
                    customer.created_at.isoformat(timespec="seconds"),
                ]
            )
        after = ids[-1]


def _safe_cell(value: str) -> str:
    # a leading = + - @ would make Excel evaluate the cell (formula injection); +86… stays
    if value[:1] in ("=", "+", "-", "@") and not value[1:2].isdigit():
        return "'" + value
    return value


def rows_to_csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows([[_safe_cell(v) for v in row] for row in rows])
    return out.getvalue().encode("utf-8-sig")  # the BOM makes Excel read UTF-8


def rows_to_xlsx(rows: list[list[str]]) -> bytes:
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("customers")
    for row in rows:
        # a leading = + - @ would make Excel evaluate the cell (CSV/formula injection)
        sheet.append(
            [f"'{v}" if v[:1] in ("=", "+", "-", "@") and not v[1:2].isdigit() else v for v in row]
        )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
