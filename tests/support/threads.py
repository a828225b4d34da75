"""Jobs run at once on threads, each with its own database connection: the
concurrency tests race real transactions against PostgreSQL."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from django.db import connection


def run_concurrently(
    jobs: list[Callable[[], object]], *, workers: int = 25
) -> list[object]:
    """Run the jobs on ``workers`` threads, each with its own database
    connection, all starting together; return each job's result or the
    exception it raised, in the order of the jobs.

    Fewer threads than jobs: the test server allows 100 connections in all and
    other suites share it. Each thread still runs its jobs one after another on
    its own connection, so every job races the jobs of every other thread.
    """
    todo: queue.Queue[int] = queue.Queue()
    for index in range(len(jobs)):
        todo.put(index)
    results: list[object] = [None] * len(jobs)
    workers = min(workers, len(jobs))
    start = threading.Barrier(workers)

    def work() -> None:
        try:
            connection.ensure_connection()
            start.wait(timeout=30)
            while True:
                try:
                    index = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    results[index] = jobs[index]()
                except Exception as exc:  # the test looks at every outcome
                    results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a worker hung"
    return results
