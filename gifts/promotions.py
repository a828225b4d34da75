"""Promotion codes, minted by operators in admin: a batch of single-use codes
or one shared code with a number of uses. Minting makes the codes, stores
their digests and hands their text back once (admin offers it as a CSV
download); a batch is minted once, and its codes are never shown again."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from gifts.codes import code_digest, code_generate, code_last4
from gifts.errors import GiftError
from gifts.models import PromotionBatch, PromotionCode, PromotionKind
from money import NANOS_PER_USD

MAX_CODES_PER_BATCH = 10_000
MAX_PROMOTION_NANOS = 1_000 * NANOS_PER_USD


class PromotionInvalid(GiftError):
    code = "invalid_promotion"


def promotion_check(
    *, amount_nanos: int, kind: str, count: int, max_redemptions: int, expires_at
) -> None:
    if not 0 < amount_nanos <= MAX_PROMOTION_NANOS:
        raise PromotionInvalid("amount: more than $0 and at most $1,000 a code")
    if kind not in PromotionKind.values:
        raise PromotionInvalid("kind: single-use codes or one shared code")
    if kind == PromotionKind.CODES and not 1 <= count <= MAX_CODES_PER_BATCH:
        raise PromotionInvalid(f"count: from 1 to {MAX_CODES_PER_BATCH:,} codes")
    if max_redemptions < 1:
        raise PromotionInvalid("max_redemptions: at least 1")
    if expires_at is None or expires_at <= timezone.now():
        raise PromotionInvalid("expires_at: must be in the future")


@transaction.atomic
def promotion_mint(*, batch: PromotionBatch, actor: User | None) -> list[str]:
    """Make the batch's codes, once; their text is in the answer only."""
    batch = PromotionBatch.objects.select_for_update().get(pk=batch.pk)
    if batch.minted_at is not None:
        raise PromotionInvalid(
            "this batch was minted already; its codes are shown only then"
        )
    promotion_check(
        amount_nanos=batch.amount_nanos,
        kind=batch.kind,
        count=batch.count,
        max_redemptions=batch.max_redemptions,
        expires_at=batch.expires_at,
    )
    how_many = batch.count if batch.kind == PromotionKind.CODES else 1
    codes = [code_generate() for _ in range(how_many)]
    PromotionCode.objects.bulk_create(
        PromotionCode(batch=batch, code_digest=code_digest(c), code_last4=code_last4(c))
        for c in codes
    )
    batch.minted_at = timezone.now()
    if batch.created_by_id is None and actor is not None:
        batch.created_by = actor
    batch.save(update_fields=["minted_at", "created_by"])
    return codes


def promotion_create(
    *,
    name: str,
    amount_nanos: int,
    kind: str,
    count: int,
    max_redemptions: int,
    expires_at: datetime,
    actor: User | None,
) -> tuple[PromotionBatch, list[str]]:
    """A batch and its codes in one go (for scripts and tests; admin saves the
    batch, then mints it from its list)."""
    promotion_check(
        amount_nanos=amount_nanos,
        kind=kind,
        count=count,
        max_redemptions=max_redemptions,
        expires_at=expires_at,
    )
    with transaction.atomic():
        batch = PromotionBatch.objects.create(
            name=name,
            amount_nanos=amount_nanos,
            kind=kind,
            count=count if kind == PromotionKind.CODES else 1,
            max_redemptions=max_redemptions if kind == PromotionKind.SHARED else 1,
            expires_at=expires_at,
            created_by=actor,
        )
        return batch, promotion_mint(batch=batch, actor=actor)
