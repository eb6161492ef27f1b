"""A WeCom simulator: every endpoint crmbot calls, with WeCom's JSON shapes, error codes
and limits, plus the provider's side of callbacks (encrypted, signed pushes for every
event type) and a double of the message-archive (会话存档) Finance SDK.

Used by the tests and by sandbox mode. It listens on 127.0.0.1 only.
"""

from .callbacks import (
    SignedCallback,
    contact_event_xml,
    event_xml,
    kf_event_xml,
    msgaudit_notify_xml,
    post_callback,
    push,
    sign_callback,
    text_message_xml,
    verify_url,
    xml_of,
)
from .core import SentMessage, SimApp, WeComSimulator, new_app

__all__ = [
    "SentMessage",
    "SignedCallback",
    "SimApp",
    "WeComSimulator",
    "contact_event_xml",
    "event_xml",
    "kf_event_xml",
    "msgaudit_notify_xml",
    "new_app",
    "post_callback",
    "push",
    "sign_callback",
    "text_message_xml",
    "verify_url",
    "xml_of",
]
