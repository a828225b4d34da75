"""The schema of /api/v1 documents every operation's error answers and the
paths as DESIGN.md writes them, and builds without a warning."""

from __future__ import annotations

from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

PAYMENTS = (
    "/api/v1/payment-methods",
    "/api/v1/top-ups",
    "/api/v1/auto-top-up",
    "/api/v1/gift-cards",
)


def test_every_operation_documents_its_errors(db):
    GENERATOR_STATS.reset()
    with GENERATOR_STATS.silence():
        schema = SchemaGenerator().get_schema(request=None, public=True)
    assert list(GENERATOR_STATS._warn_cache) == []
    assert list(GENERATOR_STATS._error_cache) == []
    validate_schema(schema)

    operations = 0
    for path, item in schema["paths"].items():
        assert not path.endswith("/"), path
        for method, operation in item.items():
            operations += 1
            statuses = set(operation["responses"])
            assert {"400", "401", "403", "404"} <= statuses, (method, path)
            if path.startswith(PAYMENTS):
                assert {"402", "409", "503"} <= statuses, (method, path)
            else:
                assert "503" not in statuses, (method, path)
    assert operations >= 21
    assert "/api/v1/balance" in schema["paths"]
    assert "/api/v1/transactions" in schema["paths"]
    transactions = schema["paths"]["/api/v1/transactions"]["get"]["responses"]["200"]
    assert transactions["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PaginatedTransactionList"
    }
