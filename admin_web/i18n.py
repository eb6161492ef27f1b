"""gettext catalogues for the console: Chinese by default, English per user (issue 9).

Catalogues are .po files compiled in memory at start, so there is no build step."""

from __future__ import annotations

import contextvars
import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES = ("zh", "en")
DEFAULT_LOCALE = "zh"
_DIR = Path(__file__).parent / "locale"

current_locale: contextvars.ContextVar[str] = contextvars.ContextVar(
    "locale", default=DEFAULT_LOCALE
)


def _load(locale: str) -> NullTranslations:
    po = _DIR / locale / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf)


_TRANSLATIONS = {loc: _load(loc) for loc in LOCALES}


def gettext(message: str) -> str:
    return _TRANSLATIONS.get(current_locale.get(), _TRANSLATIONS[DEFAULT_LOCALE]).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _TRANSLATIONS.get(current_locale.get(), _TRANSLATIONS[DEFAULT_LOCALE]).ngettext(
        singular, plural, n
    )


def negotiate(user_locale: str | None, accept_language: str | None) -> str:
    if user_locale in LOCALES:
        return str(user_locale)
    if accept_language and accept_language.lower().startswith("en"):
        return "en"
    return DEFAULT_LOCALE
