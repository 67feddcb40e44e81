"""The console's static shell and assets (public: they hold no data; the data views need a credential)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, RedirectResponse

from strata.errors import NotFoundError

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
ASSETS = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file()} if STATIC_DIR.is_dir() else {}
CACHE = {"cache-control": "public, max-age=300", "x-content-type-options": "nosniff"}
# the page runs only its own scripts and styles, talks only to its own origin and is never framed: injected markup
# can neither run nor send the credential anywhere
PAGE_HEADERS = {
    **CACHE,
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}

router = APIRouter(tags=["console"])


@router.get("/", include_in_schema=False)
async def root() -> RedirectResponse:
    return RedirectResponse("/console/", status_code=308)


@router.get("/console/", summary="The console.", response_class=FileResponse)
async def console_page() -> FileResponse:
    """The console."""
    return FileResponse(ASSETS["index.html"], media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


@router.get("/console/assets/{name}", summary="A console asset.", response_class=FileResponse)
async def console_asset(name: Annotated[str, PathParam(max_length=100, pattern=r"^[a-z0-9_.-]+$")]) -> FileResponse:
    """A console asset."""
    path = ASSETS.get(name)
    if path is None or name == "index.html":
        raise NotFoundError(f"no console asset {name!r}")
    media = "text/javascript; charset=utf-8" if name.endswith(".js") else None  # ES modules need a JS type
    return FileResponse(path, media_type=media, headers=CACHE)
