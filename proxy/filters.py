"""The filters of an account's request logs, as the REST API, the CSV export
and the console's Logs page take them from a query string.

One parser for all of them, so that a filter means the same everywhere and bad
input gets the same clear 400 naming the parameter. Cost analytics read their
``from`` and ``to`` with the same ``moment_parse``, by their rule for hours.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from rest_framework.exceptions import ValidationError

from accounts.validators import unsafe_character, unsafe_character_message
from proxy.models import RequestLog

# The longest values the request logs hold.
MODEL_MAX = RequestLog._meta.get_field("model").max_length
PROVIDER_MAX = RequestLog._meta.get_field("provider").max_length
FINISH_REASON_MAX = RequestLog._meta.get_field("finish_reason").max_length
# More keys than an account would pick by hand; bounds the query.
KEYS_MAX = 100

STATUSES = ("ok", "error")


@dataclass(frozen=True)
class LogFilters:
    """What request logs to read. ``since`` is inclusive, ``before`` exclusive
    (both aware, UTC). ``status`` "ok" is an HTTP status below 400, "error" 400
    or above."""

    since: datetime | None = None
    before: datetime | None = None
    key_ids: tuple[int, ...] = ()
    model: str | None = None
    provider: str | None = None
    status: str | None = None
    finish_reason: str | None = None
    request_id: uuid.UUID | None = None

    @property
    def rollups_answer(self) -> bool:
        """Whether the hourly usage rollups can count the logs these select
        (they keep key, model, provider, requests and errors; not why a request
        finished, nor its id)."""
        return self.finish_reason is None and self.request_id is None


def log_filters_from(params: Mapping) -> LogFilters:
    """The filters of a query string (a QueryDict, or any mapping of strings):
    ``from``, ``to``, ``key`` (repeated, or comma-separated), ``model``,
    ``provider``, ``status``, ``finish_reason``, ``request_id``.

    ``from`` and ``to`` are ISO 8601 dates or date-times (UTC unless an offset
    is given), both inclusive: a date covers its whole day. Every refused
    parameter is named in the ValidationError, with what is wrong with it."""
    errors: dict[str, list[str]] = {}

    def read(name, parse):
        try:
            return parse(params, name)
        except Refused as refused:
            errors[name] = [str(refused)]
            return None

    since = read("from", _moment_start)
    before = read("to", _moment_end)
    if since and before and before <= since:
        errors["to"] = [_BACKWARDS]
    filters = LogFilters(
        since=since,
        before=before,
        key_ids=read("key", _key_ids) or (),
        model=read("model", _text(MODEL_MAX)),
        provider=read("provider", _text(PROVIDER_MAX)),
        status=read("status", _status),
        finish_reason=read("finish_reason", _text(FINISH_REASON_MAX)),
        request_id=read("request_id", _request_id),
    )
    if errors:
        raise ValidationError(errors)
    return filters


def date_range_from(params: Mapping) -> tuple[datetime | None, datetime | None]:
    """``from`` and ``to`` alone (for other lists, such as the transactions):
    ``(since, before)``, since inclusive and before exclusive."""
    errors: dict[str, list[str]] = {}
    bounds = []
    for name, parse in (("from", _moment_start), ("to", _moment_end)):
        try:
            bounds.append(parse(params, name))
        except Refused as refused:
            errors[name] = [str(refused)]
            bounds.append(None)
    since, before = bounds
    if since and before and before <= since:
        errors["to"] = [_BACKWARDS]
    if errors:
        raise ValidationError(errors)
    return since, before


_BACKWARDS = "Must not be before from."


class Refused(ValueError):
    """A query parameter that cannot be read; the message says why."""


def _value(params: Mapping, name: str) -> str:
    return (params.get(name) or "").strip()


def moment_parse(value: str, *, end: bool, hourly: bool = False) -> datetime | None:
    """``from`` (``end`` False) or ``to`` (``end`` True) as an aware UTC
    datetime, or None when empty; raises Refused.

    An ISO 8601 date covers its whole day: as ``to``, the first moment after
    it. A date-time (UTC unless an offset is given) is the moment itself; as
    ``to`` it is inclusive (the answer is the microsecond after it), except
    ``hourly`` (cost analytics, read from hourly sums): there it must fall on a
    whole hour, and ``to`` is exclusive."""
    if not value:
        return None
    try:
        day = parse_date(value)
        if day:
            start = datetime.combine(day, time.min, tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        moment = parse_datetime(value)
        if moment is not None:
            if timezone.is_naive(moment):
                moment = moment.replace(tzinfo=UTC)
            moment = moment.astimezone(UTC)
            if end and not hourly:
                moment += timedelta(microseconds=1)
    except OverflowError:
        # A valid date whose day (or offset) runs past year 9999, or before 1.
        raise Refused(f"{shown(value)} is out of range.") from None
    except ValueError:
        moment = None
    if moment is None:
        raise Refused(
            f"{shown(value)} is not an ISO 8601 date (2026-01-31) or date-time "
            "(2026-01-31T14:00:00Z)."
        )
    if hourly and (moment.minute or moment.second or moment.microsecond):
        raise Refused(
            f"{shown(value)} is not on a whole hour (UTC): analytics count usage "
            "by the hour."
        )
    return moment


def _moment_start(params: Mapping, name: str) -> datetime | None:
    return moment_parse(_value(params, name), end=False)


def _moment_end(params: Mapping, name: str) -> datetime | None:
    return moment_parse(_value(params, name), end=True)


def _key_ids(params: Mapping, name: str) -> tuple[int, ...]:
    values = params.getlist(name) if hasattr(params, "getlist") else [params.get(name)]
    ids: list[int] = []
    for value in values:
        for part in (value or "").split(","):
            part = part.strip()
            if not part:
                continue
            # ASCII digits only: str.isdigit() also says yes to "²", which
            # int() refuses.
            if not re.fullmatch(r"[0-9]{1,18}", part) or int(part) == 0:
                raise Refused(f"{shown(part)} is not a key id.")
            if int(part) not in ids:
                ids.append(int(part))
    if len(ids) > KEYS_MAX:
        raise Refused(f"At most {KEYS_MAX} keys.")
    return tuple(ids)


def _text(limit: int):
    def parse(params: Mapping, name: str) -> str | None:
        value = _value(params, name)
        if not value:
            return None
        if len(value) > limit:
            raise Refused(f"At most {limit} characters.")
        if (char := unsafe_character(value)) is not None:
            raise Refused(unsafe_character_message(char))
        return value

    return parse


def _status(params: Mapping, name: str) -> str | None:
    value = _value(params, name).lower()
    if not value:
        return None
    if value not in STATUSES:
        raise Refused(f"{shown(value)} is not a status: ok or error.")
    return value


def _request_id(params: Mapping, name: str) -> uuid.UUID | None:
    value = _value(params, name)
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise Refused(
            f"{shown(value)} is not a request id (the X-Request-Id of an answer, "
            "e.g. 0192f0c1-7a3e-7b4d-9c1a-2f3e4d5c6b7a)."
        ) from None


def shown(value: str) -> str:
    """A query parameter in an error message: quoted, cut short."""
    return f'"{value}"' if len(value) <= 40 else f'"{value[:37]}…"'
