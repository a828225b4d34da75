"""The daily scan: a UTC day's covered requests, found in the request logs.

The logs are a table partitioned by month of ``created_at``: the scan asks for
one day's range of it, so PostgreSQL reads only that month's partition, and in
it only the blocks of that day through a BRIN index on ``created_at``
(``insurance_log_created_brin``, made by this app's migration 0002: logs are
written in about the order of their time, which is what BRIN wants, and the
index is a few pages per month). Of those rows it returns only the ones an
enabled rule could cover (``RuleBook.candidates_q``); each is then judged in
Python by its model's rules."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from insurance.coverage import (
    LOG_FIELDS,
    LogFacts,
    Rule,
    RuleBook,
    covering_rule,
    payout_nanos,
)
from proxy.models import RequestLog


@dataclass(frozen=True)
class Covered:
    log: LogFacts
    rule: Rule
    amount_nanos: int


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a UTC day."""
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def day_candidates(*, day: date, book: RuleBook):
    """The day's request logs some enabled rule could cover (a queryset of
    ``LOG_FIELDS`` tuples); None when no rule is enabled."""
    candidates = book.candidates_q()
    if candidates is None:
        return None
    start, end = day_bounds(day)
    return (
        RequestLog.objects.filter(created_at__gte=start, created_at__lt=end)
        .filter(candidates)
        .values_list(*LOG_FIELDS)
    )


def covered_on(*, day: date, book: RuleBook) -> dict[int, list[Covered]]:
    """The day's covered requests with what each is paid, by account id, in
    the order of their time. Whether one was paid already is not asked here:
    the payment asks it under the account's lock."""
    rows = day_candidates(day=day, book=book)
    covered: dict[int, list[Covered]] = defaultdict(list)
    if rows is None:
        return covered
    for row in rows.order_by("created_at", "id").iterator(chunk_size=2000):
        log = LogFacts(*row)
        rule = covering_rule(book, log)
        if rule is None:
            continue
        amount = payout_nanos(log.cost_nanos, rule.payout_percent)
        if amount > 0:
            covered[log.account_id].append(Covered(log, rule, amount))
    return covered
