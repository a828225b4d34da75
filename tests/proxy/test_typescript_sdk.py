"""The seed's TypeScript snippet, run by this machine's Node.js with the official
``openai`` npm package (pinned in tests/node/package.json), through the platform
process, against a real upstream process: answers, usage and exact billing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from billing.ledger.reconciliation import ledger_check
from billing.ledger.selectors import balance_get
from money import ceil_div
from proxy.models import RequestLog
from tests.support.proxy import nothing_held

pytestmark = pytest.mark.django_db(transaction=True)

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
SCRIPT = NODE_DIR / "seed_snippet.mjs"
INPUT, OUTPUT = 1_250_000_000, 10_000_000_000  # nanos per 1M tokens of fake/gpt


def cost(prompt: int, completion: int) -> int:
    return ceil_div(prompt * INPUT + completion * OUTPUT, 10**6)


def pinned_openai_version() -> str:
    package = json.loads((NODE_DIR / "package.json").read_text())
    return package["dependencies"]["openai"]


def installed_openai_version() -> str | None:
    installed = NODE_DIR / "node_modules" / "openai" / "package.json"
    if not installed.exists():
        return None
    return json.loads(installed.read_text())["version"]


def ensure_node_packages() -> None:
    """npm ci in tests/node unless the pinned openai is already installed. No
    Node, no npm or no registry is a failure, not a skip: CI has all three."""
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH: the TypeScript SDK test needs Node.js")
    if installed_openai_version() == pinned_openai_version():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(
            "npm is not on PATH: cannot install the openai npm package into "
            f"{NODE_DIR}/node_modules (run `npm ci` there)"
        )
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"`npm ci` in {NODE_DIR} timed out: is the npm registry reachable?")
    if done.returncode != 0:
        pytest.fail(
            f"`npm ci` in {NODE_DIR} failed (exit {done.returncode}); no network "
            f"or no npm registry?\n{done.stderr[-3000:]}"
        )
    assert installed_openai_version() == pinned_openai_version()


def run_snippet(*, base_url: str, api_key: str, content: str) -> list[dict]:
    env = {
        **os.environ,
        "BASE_URL": base_url,
        "API_KEY": api_key,
        "MODEL": "fake/gpt",
        "CONTENT": content,
        "NO_COLOR": "1",
    }
    done = subprocess.run(  # noqa: S603 - fixed argv
        [shutil.which("node") or "node", SCRIPT.name],
        cwd=NODE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, (
        f"node {SCRIPT.name} exited {done.returncode}\n"
        f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    )
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def test_seed_typescript_snippet_answers_streams_and_bills_exactly(
    alice, alice_key, platform, catalog
):
    ensure_node_packages()
    before = balance_get(account=alice.account).total_nanos

    lines = run_snippet(
        base_url=platform.base_url,
        api_key=alice_key.secret,
        content="What is the meaning of life? "
        "#upstream prompt_tokens=120 completion_tokens=30",
    )

    kinds = [line["type"] for line in lines]
    assert kinds == ["message", "usage"] + ["chunk"] * 30 + ["stream_usage"]
    expected_text = "tok" + " tok" * 29

    # The snippet: console.log(completion.choices[0].message)
    message = lines[0]["message"]
    assert message["role"] == "assistant"
    assert message["content"] == expected_text
    usage = lines[1]["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (120, 30)
    assert usage["total_tokens"] == 150

    # The streaming variant: the same text, chunk by chunk, then the usage.
    assert "".join(line["text"] for line in lines if line["type"] == "chunk") == (
        expected_text
    )
    stream_usage = lines[-1]["usage"]
    assert (stream_usage["prompt_tokens"], stream_usage["completion_tokens"]) == (
        120,
        30,
    )
    assert stream_usage["total_tokens"] == 150

    # Billed exactly, and the same for both calls.
    expected = cost(120, 30)
    assert expected == 450_000  # 120 × $1.25/M + 30 × $10/M = $0.00045
    logs = list(
        RequestLog.objects.order_by("created_at").values_list(
            "status",
            "model",
            "streamed",
            "prompt_tokens",
            "completion_tokens",
            "cost_nanos",
            "usage_estimated",
        )
    )
    assert logs == [
        (200, "fake/gpt", False, 120, 30, expected, False),
        (200, "fake/gpt", True, 120, 30, expected, False),
    ]
    balance = balance_get(account=alice.account)
    assert balance.total_nanos == before - 2 * expected
    assert nothing_held(alice.account)
    assert ledger_check() == []
