"""Playwright in tests: Debian's Chromium (never a downloaded one:
``playwright install`` needs the internet), and a thread to drive it in."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor

from django.db import connection

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def in_own_thread(scenario, *args):
    """Run a Playwright scenario in a thread of its own: the end-to-end suite
    keeps one Playwright open for the whole session in the main thread, and a
    second one cannot start beside it in the same thread."""

    def run():
        try:
            return scenario(*args)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()
