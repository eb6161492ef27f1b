"""Broadcast audiences that come from other packages (tagging's segments and tags),
registered into the broadcasts registry here so neither domain imports the other."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from broadcasts.audience import BATCH, AudienceRegistry
from tagging.models import Segment
from tagging.segments.service import definition_from, definition_of, iter_customer_ids


class SegmentAudience:
    """A saved segment (spec {"segment_id": n}) or an ad-hoc expression
    (spec {"expression": "tag:\\"意向/询价\\" AND region:\\"广东\\""}), evaluated once
    at the fire time so relative conditions do not drift while freezing."""

    def __init__(self, spec: Mapping[str, Any], fire_time: datetime, zone: str) -> None:
        self.spec = spec
        self.fire_time = fire_time
        self.tz = ZoneInfo(zone)

    def select_ids(self) -> Select[Any] | None:
        return None  # compiling needs the session (tag names → ids): use batches

    async def batches(
        self, session: AsyncSession, size: int = BATCH
    ) -> AsyncIterator[Sequence[int]]:
        if self.spec.get("segment_id") is not None:
            segment = await session.get(Segment, int(self.spec["segment_id"]))
            if segment is None:
                raise LookupError(f"segment {self.spec['segment_id']} does not exist")
            definition = definition_of(segment)
        else:
            definition = definition_from(expression=str(self.spec.get("expression", "")))
        async for batch in iter_customer_ids(
            session, definition, batch_size=size, now=self.fire_time, tz=self.tz
        ):
            yield batch


def tags_expression(tag_names: Sequence[str], match: str = "any") -> str:
    joiner = " AND " if match == "all" else " OR "
    return joiner.join(f'tag:"{name}"' for name in tag_names)


def register_tagging_audiences(registry: AudienceRegistry) -> AudienceRegistry:
    registry.register("segment", SegmentAudience)
    registry.register(
        "tags",
        lambda spec, at, zone: SegmentAudience(
            {"expression": tags_expression(spec.get("tags", []), str(spec.get("match", "any")))},
            at,
            zone,
        ),
    )
    return registry
