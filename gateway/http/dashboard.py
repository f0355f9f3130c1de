"""The web dashboard (``web/``, built by ``make web`` into ``web/dist``) at ``/``.

Files under ``/assets`` are served as built (their names carry a content hash,
so they may be cached for good); every other path the API does not own gets
``index.html``, whose router draws the page (``/jobs/…``, ``/runs/…``). The
dashboard talks to the public API only, like any other client.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

# Paths that are never the dashboard's, so a mistyped API route stays a JSON 404.
_NOT_PAGES = ("api/", "healthz", "readyz", "metrics")
_NOT_BUILT = """<!doctype html><title>cronfleet</title>
<p>The dashboard is not built: run <code>make web</code>. The API is at
<a href="/api/v1/openapi.json">/api/v1</a>.</p>"""


def mount(app: FastAPI, dist: Path) -> None:
    index = dist / "index.html"
    if (dist / "assets").is_dir():
        app.mount("/assets", StaticFiles(directory=dist / "assets"), name="assets")

    @app.get("/{path:path}", include_in_schema=False, response_model=None)
    async def page(path: str) -> FileResponse | HTMLResponse:
        if path.startswith(_NOT_PAGES):
            raise HTTPException(404, "no such route")
        top = dist / path
        if path and "/" not in path and top.is_file():  # favicon.svg, robots.txt
            return FileResponse(top)
        if not index.is_file():
            return HTMLResponse(_NOT_BUILT, status_code=503)
        # The page itself must be re-checked, or a browser keeps an old build.
        return FileResponse(index, headers={"Cache-Control": "no-cache"})
