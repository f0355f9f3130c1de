"""The gateway serves the built dashboard at / and leaves the API's paths alone."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from gateway.http import dashboard


def _app(dist: Path) -> httpx.AsyncClient:
    app = FastAPI()

    @app.get("/api/v1/jobs")
    async def jobs() -> dict[str, list[str]]:
        return {"jobs": []}

    dashboard.mount(app, dist)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")


async def test_pages_get_the_index_and_assets_are_served(tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<div id=root></div>")
    (tmp_path / "assets" / "app-1234.js").write_text("console.log(1)")
    (tmp_path / "favicon.svg").write_text("<svg/>")
    async with _app(tmp_path) as client:
        for page in ("/", "/jobs", "/jobs/6f1c/edit", "/runs/abc"):
            reply = await client.get(page)
            assert reply.status_code == 200 and "root" in reply.text, page
            assert reply.headers["cache-control"] == "no-cache"
        assert (await client.get("/assets/app-1234.js")).text == "console.log(1)"
        assert (await client.get("/favicon.svg")).text == "<svg/>"
        assert (await client.get("/api/v1/jobs")).json() == {"jobs": []}
        assert (await client.get("/api/v1/no-such-route")).status_code == 404
        assert (await client.get("/assets/missing.js")).status_code == 404
        assert "root" not in (await client.get("/healthz/../metrics")).text


async def test_an_unbuilt_dashboard_says_how_to_build_it(tmp_path: Path) -> None:
    async with _app(tmp_path / "dist") as client:
        reply = await client.get("/jobs")
    assert reply.status_code == 503 and "make web" in reply.text
