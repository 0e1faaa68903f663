"""The dashboard's files at / and /static/<name>, from the package, under a strict CSP."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.responses import Response

PACKAGE = "sentiment_pipeline.insights"
FOLDER = "static"
INDEX = "index.html"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Only this origin's files; images may also be data: URLs (the charts). No inline script or
# style, so markup that slipped into the page could not run.
CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'"
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}


def load_static() -> dict[str, tuple[bytes, str]]:
    """The dashboard's files by name, with their content types; missing ones fail start-up."""
    folder = files(PACKAGE).joinpath(FOLDER)
    found: dict[str, tuple[bytes, str]] = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
        if entry.is_file() and suffix in CONTENT_TYPES:
            found[entry.name] = (entry.read_bytes(), CONTENT_TYPES[suffix])
    missing = {INDEX, "app.js", "app.css"} - set(found)
    if missing:
        raise RuntimeError(
            f"the dashboard's files {sorted(missing)} are missing from the package "
            f"({PACKAGE}/{FOLDER}); reinstall sentiment-pipeline"
        )
    return found


def dashboard_router() -> APIRouter:
    """GET / (the page) and GET /static/<name> (its script and style); no token needed."""
    static = load_static()
    router = APIRouter(include_in_schema=False)

    def serve(name: str) -> Response:
        if name not in static:
            raise HTTPException(404, f"no dashboard file {name!r}")
        body, content_type = static[name]
        return Response(body, headers={**HEADERS, "content-type": content_type})

    @router.get("/")
    async def page() -> Response:
        return serve(INDEX)

    @router.get("/static/{name}")
    async def asset(name: str) -> Response:
        return serve(name)

    return router
