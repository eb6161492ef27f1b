"""Chinese is the default: every message the console shows has a Chinese translation,
and the English catalogue knows every message too."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

import admin_web

ROOT = Path(admin_web.__file__).parent
METHODS = [("**/templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true"}}


def _used() -> set[str]:
    return {
        msg
        for _file, _line, msg, _comments, _ctx in extract_from_dir(
            str(ROOT), METHODS, options_map=OPTIONS
        )
        if isinstance(msg, str)
    }


@pytest.mark.parametrize("locale", ["zh", "en"])
def test_every_console_message_is_translated(locale: str) -> None:
    with (ROOT / "locale" / locale / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    translated = {m.id for m in catalog if m.id and m.string}
    assert sorted(_used() - translated) == []


def test_chinese_is_the_default_language() -> None:
    from admin_web.i18n import current_locale, gettext, negotiate

    token = current_locale.set(negotiate(None, None))
    try:
        assert gettext("Inbox") == "收件箱"
    finally:
        current_locale.reset(token)
