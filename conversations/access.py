"""Who may see which conversation — enforced here, in the service layer, for the console
and the JSON API alike (issue 9): admin all; manager their team's and unassigned;
sales their own and unassigned; marketer no private conversations."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sqlalchemy import ColumnElement, false, or_, select, true

from .models import Conversation, StaffUser


class Role(enum.StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    SALES = "sales"
    MARKETER = "marketer"


@dataclass(frozen=True)
class Viewer:
    staff_id: int
    role: Role
    team_id: int | None = None


class AccessDenied(PermissionError):
    """Raised by services when a viewer acts outside their scope."""


def conversation_scope(viewer: Viewer) -> ColumnElement[bool]:
    """SQL condition selecting the conversations `viewer` may see."""
    if viewer.role == Role.ADMIN:
        return true()
    if viewer.role == Role.MARKETER:
        return false()
    unassigned = Conversation.assignee_id.is_(None)
    if viewer.role == Role.MANAGER and viewer.team_id is not None:
        team_members = select(StaffUser.id).where(StaffUser.team_id == viewer.team_id)
        return or_(unassigned, Conversation.assignee_id.in_(team_members))
    return or_(unassigned, Conversation.assignee_id == viewer.staff_id)


def can_view(viewer: Viewer, conversation: Conversation, assignee_team: int | None) -> bool:
    if viewer.role == Role.ADMIN:
        return True
    if viewer.role == Role.MARKETER:
        return False
    if conversation.assignee_id is None or conversation.assignee_id == viewer.staff_id:
        return True
    return (
        viewer.role == Role.MANAGER
        and viewer.team_id is not None
        and assignee_team == viewer.team_id
    )
