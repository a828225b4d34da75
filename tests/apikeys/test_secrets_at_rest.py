"""The full key exists only in the answer that creates it: not in any table,
not in later answers, not in the admin."""

from __future__ import annotations

import math

from django.db import connection
from psycopg import sql

from apikeys.models import ApiKey, KeyKind
from apikeys.secrets import (
    ALPHABET,
    CHECKSUM_LENGTH,
    MANAGEMENT_PREFIX,
    PAYG_PREFIX,
    RANDOM_LENGTH,
    key_digest,
    key_is_well_formed,
)
from tests.support.keys import make_key


def test_key_format_has_a_checksum_and_at_least_160_random_bits(alice, api_for):
    secret = (
        api_for(alice).post("/api/v1/keys", {"name": "k"}, format="json").json()["key"]
    )
    assert secret.startswith("sk-ap-v1-")
    assert key_is_well_formed(secret, PAYG_PREFIX)
    assert RANDOM_LENGTH * math.log2(len(ALPHABET)) >= 160
    body = secret[len(PAYG_PREFIX) : -CHECKSUM_LENGTH]
    assert len(body) == RANDOM_LENGTH
    assert set(body) <= set(ALPHABET)
    # The checksum catches a typo (and tells keys from look-alike text).
    typo = secret[: len(PAYG_PREFIX)] + ("x" if body[0] != "x" else "y") + secret[10:]
    assert not key_is_well_formed(typo, PAYG_PREFIX)
    assert not key_is_well_formed(secret, MANAGEMENT_PREFIX)


def test_two_keys_are_never_alike(alice):
    secrets = {make_key(alice).secret for _ in range(50)}
    assert len(secrets) == 50


def _tables_containing(needle: str) -> list[str]:
    """A pg_dump-like scan: every row of every table, cast to text."""
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(
                sql.SQL("SELECT count(*) FROM {} AS t WHERE t::text LIKE %s").format(
                    sql.Identifier(table)
                ),
                [f"%{needle}%"],
            )
            if cursor.fetchone()[0]:
                found.append(table)
    return found


def test_the_database_holds_no_full_key_anywhere(alice, api_for, client, ops):
    api = api_for(alice)
    payg = api.post("/api/v1/keys", {"name": "p"}, format="json").json()
    management = api.post(
        "/api/v1/keys", {"name": "m", "kind": "management"}, format="json"
    ).json()
    # The console creates keys too; and a session is a table as well.
    client.force_login(alice)
    client.post("/console/keys/new", {"name": "console", "kind": "payg"})
    console_key = ApiKey.objects.get(name="console")

    for created in (payg, management):
        secret = created["key"]
        row = ApiKey.objects.get(pk=created["id"])
        assert row.digest == key_digest(secret)
        assert secret not in row.prefix
        random_part = secret[9:-CHECKSUM_LENGTH]
        assert _tables_containing(secret) == []
        assert _tables_containing(random_part) == []
        # The prefix shows at most the first 3 and last 4 characters.
        assert _tables_containing(random_part[:8]) == []
    assert console_key.kind == KeyKind.PAYG
    assert console_key.digest != ""


def test_the_admin_never_shows_a_key_or_its_digest(alice, ops, client):
    created = make_key(alice, name="visible")
    client.force_login(ops)
    changelist = client.get("/admin/apikeys/apikey/").content.decode()
    change = client.get(
        f"/admin/apikeys/apikey/{created.api_key.pk}/change/"
    ).content.decode()
    assert "visible" in changelist
    assert created.api_key.prefix in changelist
    for page in (changelist, change):
        assert created.secret not in page
        assert created.secret[9:-CHECKSUM_LENGTH] not in page
        assert created.api_key.digest not in page
        assert "digest" not in page.lower()
