"""ASGI middleware: a bearer token on every route but /health and the dashboard's files."""

from __future__ import annotations

import hmac
from typing import Any

from sentiment_pipeline.serving.errors import ServingError, error_response

# Open without the token: the health check and the dashboard's static files (the page has to
# load to ask for the token). Everything else, /docs and /openapi.json included, needs it.
OPEN_PATHS = frozenset({"/health", "/"})
OPEN_PREFIXES = ("/static/",)

Scope = dict[str, Any]


def is_open(method: str, path: str) -> bool:
    """Whether a request is served without the token: the open paths, but for OPTIONS.

    OPTIONS without the token is the same 401 on every path, a route or not, so routes cannot
    be enumerated; a CORS preflight, which browsers send without credentials, is answered
    before this by the CORS middleware.
    """
    return method != "OPTIONS" and (path in OPEN_PATHS or path.startswith(OPEN_PREFIXES))


def bearer(scope: Scope) -> bytes | None:
    """The token of the request's `Authorization: Bearer <token>` header, if it has one."""
    for key, value in scope.get("headers", []):
        if key == b"authorization":
            scheme, _, token = value.strip().partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return token.strip()
            return None
    return None


def authorised(scope: Scope, token: bytes) -> bool:
    given = bearer(scope)
    # compare_digest takes the same time whatever the first differing byte is.
    return given is not None and hmac.compare_digest(given, token)


class TokenAuth:
    """Refuses a request without the right bearer token: 401 and `WWW-Authenticate: Bearer`."""

    def __init__(self, app: Any, *, token: str) -> None:
        if not token:
            raise ValueError("TokenAuth needs a non-empty token")
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or authorised(scope, self.token):
            await self.app(scope, receive, send)
            return
        if kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        path = scope["path"]
        if is_open(scope["method"], path):
            await self.app(scope, receive, send)
            return
        given = bearer(scope) is not None
        message = (
            "the bearer token is wrong" if given else
            "this server needs `Authorization: Bearer <token>` "
            "(the token in SENTIMENT_PIPELINE_API_TOKEN on the server)"
        )
        response = error_response(path, ServingError(401, "unauthorized", message))
        response.headers["www-authenticate"] = (
            'Bearer error="invalid_token"' if given else "Bearer"
        )
        await response(scope, receive, send)
