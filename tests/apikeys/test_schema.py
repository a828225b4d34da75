"""drf-spectacular documents the key and request-log endpoints."""

from __future__ import annotations

from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema


def test_the_schema_documents_keys_and_requests_without_warnings(db, capsys):
    GENERATOR_STATS.reset()
    with GENERATOR_STATS.silence():
        schema = SchemaGenerator().get_schema(request=None, public=True)
    validate_schema(schema)
    ours = [
        message
        for message in (*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache)
        if "apikeys" in message or "/keys" in message or "/requests" in message
    ]
    assert ours == []

    paths = schema["paths"]
    keys = next(p for p in paths if p.rstrip("/").endswith("/api/v1/keys"))
    key = next(p for p in paths if "/api/v1/keys/{key_id}" in p)
    requests = next(p for p in paths if p.rstrip("/").endswith("/api/v1/requests"))
    assert set(paths[keys]) == {"get", "post"}
    assert set(paths[key]) == {"get", "patch", "delete"}
    assert set(paths[requests]) == {"get"}
    params = {p["name"] for p in paths[requests]["get"]["parameters"]}
    assert {"key", "model", "from", "to", "limit", "cursor"} <= params

    components = schema["components"]
    assert "key" in components["schemas"]["CreatedKey"]["properties"]
    assert "key" not in components["schemas"]["Key"]["properties"]
    assert components["schemas"]["Key"]["properties"]["limit"]["nullable"] is True
    assert "managementKey" in components["securitySchemes"]
