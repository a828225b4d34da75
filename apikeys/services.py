"""Every write to API keys. A change of a key's status, credit limit or
existence also writes its ``KeyAction`` (who, when, why, before and after), in
the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Account, User
from accounts.validators import unsafe_character, unsafe_character_message
from apikeys.errors import ApiKeyError
from apikeys.models import (
    ApiKey,
    KeyAction,
    KeyActionKind,
    KeyKind,
    KeyStatus,
    LimitReset,
)
from apikeys.secrets import (
    MANAGEMENT_PREFIX,
    PAYG_PREFIX,
    key_digest,
    key_display_prefix,
    key_generate,
)
from money import MAX_NANOS

NAME_MAX = 100


@dataclass(frozen=True)
class CreatedKey:
    api_key: ApiKey
    secret: str  # shown once, never stored


@dataclass(frozen=True)
class _KeyState:
    """What a key action records of a key, before and after."""

    status: str
    limit_nanos: int | None
    limit_reset: str

    @classmethod
    def of(cls, api_key: ApiKey) -> _KeyState:
        return cls(api_key.status, api_key.limit_nanos, api_key.limit_reset)


def _action_record(
    *,
    api_key: ApiKey,
    action: KeyActionKind,
    before: _KeyState,
    after: _KeyState,
    actor: User | None,
    reason: str = "",
) -> KeyAction:
    return KeyAction.objects.create(
        api_key=api_key,
        actor=actor,
        action=action,
        reason=reason,
        status_before=before.status,
        status_after=after.status,
        limit_nanos_before=before.limit_nanos,
        limit_nanos_after=after.limit_nanos,
        limit_reset_before=before.limit_reset,
        limit_reset_after=after.limit_reset,
    )


@transaction.atomic
def key_create(
    *,
    account: Account,
    name: str,
    kind: KeyKind | str = KeyKind.PAYG,
    limit_nanos: int | None = None,
    limit_reset: LimitReset | str = LimitReset.NONE,
) -> CreatedKey:
    name = _clean_name(name)
    kind = KeyKind(kind) if kind in KeyKind.values else _bad("kind", kind, KeyKind)
    limit_nanos, limit_reset = _clean_limit(limit_nanos, limit_reset)
    secret = key_generate(PAYG_PREFIX if kind == KeyKind.PAYG else MANAGEMENT_PREFIX)
    api_key = ApiKey.objects.create(
        account=account,
        kind=kind,
        name=name,
        prefix=key_display_prefix(secret),
        digest=key_digest(secret),
        limit_nanos=limit_nanos,
        limit_reset=limit_reset,
        period_start=timezone.now() if limit_nanos else None,
    )
    return CreatedKey(api_key, secret)


_UNSET = object()


@transaction.atomic
def key_update(
    *,
    api_key: ApiKey,
    name: str | None = None,
    status: KeyStatus | str | None = None,
    limit_nanos: int | None | object = _UNSET,
    limit_reset: LimitReset | str | None = None,
    actor: User | None = None,
) -> ApiKey:
    """Rename, enable or disable, or change the credit limit of a key, by its
    owner (``actor``). A change of status or limit is recorded as an action.

    Lock the key row: a concurrent settle adds to its usage under the same lock.
    """
    api_key = ApiKey.objects.select_for_update().get(pk=api_key.pk, deleted_at=None)
    before = _KeyState.of(api_key)
    fields = []
    if name is not None:
        api_key.name = _clean_name(name)
        fields.append("name")
    if status is not None:
        if status not in KeyStatus.values:
            _bad("status", status, KeyStatus)
        if (
            status == KeyStatus.ENABLED
            and api_key.disabled_by_id is not None
            and api_key.status == KeyStatus.DISABLED
        ):
            raise ApiKeyError(
                "status: this key was disabled by support "
                f"({api_key.disabled_reason}); contact support to enable it"
            )
        api_key.status = status
        fields += ["status"]
    if limit_nanos is not _UNSET or limit_reset is not None:
        new_limit = api_key.limit_nanos if limit_nanos is _UNSET else limit_nanos
        new_limit, new_reset = _clean_limit(
            new_limit, limit_reset or api_key.limit_reset
        )
        if new_reset != api_key.limit_reset:
            api_key.period_start = timezone.now()
            api_key.period_used_nanos = 0
        api_key.limit_nanos, api_key.limit_reset = new_limit, new_reset
        if api_key.period_start is None:
            api_key.period_start = timezone.now()
        fields += ["limit_nanos", "limit_reset", "period_start", "period_used_nanos"]
    if fields:
        api_key.save(update_fields=fields)
    # One action per change: the status's, then the limit's.
    after = _KeyState.of(api_key)
    between = _KeyState(after.status, before.limit_nanos, before.limit_reset)
    if before.status != after.status:
        action = (
            KeyActionKind.ENABLED
            if after.status == KeyStatus.ENABLED
            else KeyActionKind.DISABLED
        )
        _action_record(
            api_key=api_key, action=action, before=before, after=between, actor=actor
        )
    if between != after:
        _action_record(
            api_key=api_key,
            action=KeyActionKind.LIMIT_CHANGED,
            before=between,
            after=after,
            actor=actor,
        )
    return api_key


@transaction.atomic
def key_disable_by_operator(*, api_key: ApiKey, operator: User, reason: str) -> ApiKey:
    reason = (reason or "").strip()
    if not reason:
        raise ApiKeyError("a reason is required to disable a key")
    api_key = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    before = _KeyState.of(api_key)
    api_key.status = KeyStatus.DISABLED
    api_key.disabled_reason = reason[:500]
    api_key.disabled_by = operator
    api_key.save(update_fields=["status", "disabled_reason", "disabled_by"])
    _action_record(
        api_key=api_key,
        action=KeyActionKind.OPERATOR_DISABLED,
        before=before,
        after=_KeyState.of(api_key),
        actor=operator,
        reason=reason[:500],
    )
    return api_key


@transaction.atomic
def key_delete(*, api_key: ApiKey, actor: User | None = None) -> None:
    """Delete a key: it stops working at once and leaves the lists, but its row
    stays so that request logs, usage and its history keep naming it."""
    api_key = (
        ApiKey.objects.select_for_update()
        .filter(pk=api_key.pk, deleted_at=None)
        .first()
    )
    if api_key is None:
        return  # deleted already
    before = _KeyState.of(api_key)
    api_key.deleted_at = timezone.now()
    api_key.status = KeyStatus.DISABLED
    api_key.save(update_fields=["deleted_at", "status"])
    _action_record(
        api_key=api_key,
        action=KeyActionKind.DELETED,
        before=before,
        after=_KeyState.of(api_key),
        actor=actor,
    )


# last_used_at is written at most this often per key, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def key_mark_used(*, api_key: ApiKey) -> None:
    """Record that a key was just used. A conditional UPDATE without a lock, so
    busy keys cost one write a minute and never wait on a settle."""
    now = timezone.now()
    ApiKey.objects.filter(pk=api_key.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
    ).update(last_used_at=now)


def _clean_name(name: str | None) -> str:
    name = (name or "").strip()
    if not name:
        raise ApiKeyError("name: a key needs a name")
    if len(name) > NAME_MAX:
        raise ApiKeyError(f"name: at most {NAME_MAX} characters")
    if (char := unsafe_character(name)) is not None:
        raise ApiKeyError(f"name: {unsafe_character_message(char)}")
    return name


def _clean_limit(limit_nanos, limit_reset) -> tuple[int | None, str]:
    if limit_reset not in LimitReset.values:
        _bad("limit_reset", limit_reset, LimitReset)
    if limit_nanos is None:
        return None, LimitReset.NONE if limit_reset is None else limit_reset
    if isinstance(limit_nanos, bool) or not isinstance(limit_nanos, int):
        raise ApiKeyError("limit: must be an amount in USD")
    if limit_nanos <= 0:
        raise ApiKeyError("limit: must be more than zero (leave it empty for none)")
    if limit_nanos > MAX_NANOS:
        raise ApiKeyError("limit: too large")
    return limit_nanos, limit_reset


def _bad(field: str, value, choices):
    raise ApiKeyError(f"{field}: {value!r} is not one of {', '.join(choices.values)}")


@transaction.atomic
def key_enable_by_operator(
    *, api_key: ApiKey, operator: User, reason: str = ""
) -> ApiKey:
    """Lift an operator's block (the customer cannot). The key's
    ``disabled_by`` and ``disabled_reason`` say its present state only; the
    block stays in its actions."""
    api_key = ApiKey.objects.select_for_update().get(pk=api_key.pk, deleted_at=None)
    before = _KeyState.of(api_key)
    api_key.status = KeyStatus.ENABLED
    api_key.disabled_reason = ""
    api_key.disabled_by = None
    api_key.save(update_fields=["status", "disabled_reason", "disabled_by"])
    _action_record(
        api_key=api_key,
        action=KeyActionKind.OPERATOR_ENABLED,
        before=before,
        after=_KeyState.of(api_key),
        actor=operator,
        reason=(reason or "").strip()[:500],
    )
    return api_key
