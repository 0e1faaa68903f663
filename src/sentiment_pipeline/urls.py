"""URLs fit for a message: a store's or a database's URL without its password."""

from __future__ import annotations

import re

# scheme://user:password@host...: the password is taken to run to the last "@" before the
# query, so that one with an unencoded "/" or "@" (which SQLAlchemy accepts) is hidden whole.
USERINFO = re.compile(r"^(?P<user>[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@]*):[^?#]*@")


def redact(url: str) -> str:
    """`url` with its password, if it has one, replaced by ***."""
    return USERINFO.sub(r"\g<user>:***@", url, count=1)
