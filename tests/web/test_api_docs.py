"""/api/docs/ is self-contained: Swagger UI and its set-up script come from
this site (drf-spectacular-sidecar), so the page works offline and under the
Content-Security-Policy."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.django_db


def _assets(html: str) -> list[str]:
    return re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="([^"]+)"', html)


def test_the_docs_page_loads_only_local_assets_and_each_answers(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assets = _assets(html)
    assert len(assets) >= 5  # favicon, 2 stylesheets, 3 scripts
    assert any("swagger-ui-bundle.js" in a for a in assets)
    assert any("swagger-ui.css" in a for a in assets)
    for url in assets:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        body = b"".join(asset.streaming_content) if asset.streaming else asset.content
        assert len(body) > 0, url
    assert "cdn" not in html.lower()


def test_the_set_up_script_is_served_apart_and_points_at_the_schema(client):
    html = client.get("/api/docs/").content.decode()
    script_url = next(u for u in _assets(html) if u.startswith("/api/docs/"))

    script = client.get(script_url)

    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "/api/schema/" in script.content.decode()
    assert "SwaggerUIBundle" in script.content.decode()


def test_the_schema_it_shows_answers(client, alice):
    client.force_login(alice)

    response = client.get("/api/schema/")

    assert response.status_code == 200
    assert b"/api/v1/balance" in response.content
