"""What the catalog accepts: names, lifecycles, free text, identifiers.

Each check raises ``Invalid`` with a reason that names the rule broken, so a user can fix
the input from the message alone.
"""

from __future__ import annotations

import re

from podium.catalog.models import Lifecycle
from podium.errors import Invalid

NAME_PATTERN = r"^[a-z](?:[a-z0-9-]{0,38}[a-z0-9])?$"
NAME_RE = re.compile(NAME_PATTERN)
NAME_RULE = "a lower-case letter, then up to 39 lower-case letters, digits or dashes, not ending in a dash"

TEAM_DESCRIPTION_MAX = 500
DESCRIPTION_MAX = 2000
TOKEN_DESCRIPTION_MAX = 200
TOKEN_NAME_MAX = 60
REASON_MAX = 500

# Grant ids are 32-bit on PostgreSQL; anything outside cannot name a grant.
ID_MAX = 2**31 - 1

# Characters no store keeps faithfully: NUL (PostgreSQL refuses it in text) and lone
# UTF-16 surrogates (not encodable as UTF-8).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def is_name(text: str) -> bool:
    """Whether ``text`` is a DNS label the catalog could have stored as a name."""
    return NAME_RE.fullmatch(text) is not None


def check_name(kind: str, name: str) -> str:
    """A DNS label: lower-case letter first, then letters, digits and dashes, 40 at most."""
    if not is_name(name):
        shown = name if len(name) <= 60 else f"{name[:60]}…"
        raise Invalid(f"invalid {kind} name {shown!r}: use {NAME_RULE}")
    return name


def check_lifecycle(value: str) -> Lifecycle:
    """One of the lifecycle stages."""
    try:
        return Lifecycle(value)
    except ValueError:
        allowed = ", ".join(v.value for v in Lifecycle)
        raise Invalid(f"invalid lifecycle {value!r}: use one of {allowed}") from None


def check_text(field: str, value: str, max_length: int) -> str:
    """Free text a user wrote: at most ``max_length`` characters, all of them storable."""
    if len(value) > max_length:
        raise Invalid(f"{field} is too long: {len(value)} characters, at most {max_length}")
    if _UNSTORABLE.search(value):
        raise Invalid(f"{field} contains a NUL character or a lone surrogate, which cannot be stored")
    return value
