"""A model's image allowance through the platform process: the hold counts the
catalog's ``image_tokens_max`` for each image, not the global default."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest

from apikeys.services import key_create
from proxy.models import CatalogModel
from tests.support.world import grant

pytestmark = pytest.mark.django_db(transaction=True)


def prompt_bound_said(response: httpx.Response) -> int:
    """The prompt bound a 402 names: "(N prompt tokens at most, …)"."""
    assert response.status_code == 402, response.text
    found = re.search(
        r"\((\d+) prompt tokens at most", response.json()["error"]["message"]
    )
    assert found, response.text
    return int(found.group(1))


def test_the_hold_counts_the_models_allowance_for_each_image(
    bob, catalog, platform, upstream
):
    CatalogModel.objects.filter(id="fake/gpt").update(image_tokens_max=30_000)
    time.sleep(0.5)  # the platform keeps its catalog 0.2 s in tests
    grant(bob, "0.01")
    secret = key_create(account=bob.account, name="images").secret
    upstream.reset_stats()
    parts = [{"type": "text", "text": "Describe these."}]
    parts += [
        {"type": "image_url", "image_url": {"url": f"https://img.example/{i}.png"}}
        for i in range(10)
    ]
    body = {
        "model": "fake/gpt",
        "messages": [{"role": "user", "content": parts}],
        "max_tokens": 100,
    }

    response = httpx.post(
        f"{platform.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {secret}"},
        content=json.dumps(body).encode(),
        timeout=20,
    )

    # 300,000 prompt tokens at $1.25 per 1M are $0.375: more than bob has.
    assert prompt_bound_said(response) >= 10 * 30_000
    assert upstream.stats()["requests"] == 0
