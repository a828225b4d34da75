"""Promotion codes minted by operators: credited as a Gift lot shown as
Discount in the history, once per account per batch, within their uses and
their expiry; wrong codes pause redeeming for 15 minutes after 5."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import CreditLot, LedgerEntry, LotSource
from gifts.codes import code_generate
from gifts.models import PromotionKind, RedeemGuard, Redemption
from gifts.services import promotion_create
from tests.support.ledger import USD, assert_ledger_whole, lot_of, wallet_of
from tests.support.threads import run_concurrently
from tests.support.world import new_account


def api(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def redeem(user, code: str):
    return api(user).post("/api/v1/gift-codes/redeem", {"code": code}, format="json")


def promotion(*, amount=10 * USD, kind=PromotionKind.CODES, count=3, uses=1, days=30):
    return promotion_create(
        name="Launch week",
        amount_nanos=amount,
        kind=kind,
        count=count,
        max_redemptions=uses,
        expires_at=timezone.now() + timedelta(days=days),
        actor=None,
    )


def test_a_promotion_code_is_a_gift_lot_shown_as_discount(db, alice):
    _, codes = promotion(amount=7_500_000_000)
    before = wallet_of(alice.account)
    response = redeem(alice, codes[0].lower())
    assert response.status_code == 200, response.content
    assert response.json() == {
        "amount": "7.500000000",
        "type": "discount",
        "balance": "57.500000000",
    }
    assert wallet_of(alice.account) == (before[0], before[1] + 7_500_000_000, 0)
    entry = LedgerEntry.objects.get(account=alice.account, method="Discount")
    assert (entry.kind, entry.amount_nanos, entry.bonus_delta_nanos) == (
        "gift",
        7_500_000_000,
        7_500_000_000,
    )
    lot = lot_of(entry)
    assert (lot.source, lot.pool, lot.remaining_nanos) == (
        "gift",
        "bonus",
        7_500_000_000,
    )
    history = api(alice).get("/api/v1/transactions").json()["results"]
    assert (history[0]["type"], history[0]["method"]) == ("gift", "Discount")
    assert_ledger_whole(alice.account)


def test_one_code_of_a_batch_per_account_and_each_code_once(db, alice, bob):
    _, codes = promotion(count=3)
    assert redeem(alice, codes[0]).status_code == 200
    again = redeem(alice, codes[1])
    assert again.status_code == 409
    assert "redeemed a code of this promotion" in again.json()["error"]["message"]
    used = redeem(bob, codes[0])
    assert (used.status_code, used.json()["error"]["code"]) == (409, "code_used")
    assert redeem(bob, codes[1]).status_code == 200
    assert Redemption.objects.count() == 2
    assert_ledger_whole(alice.account, bob.account)


def test_an_expired_promotion_code_is_refused(db, alice):
    batch, codes = promotion(count=1)
    batch.expires_at = timezone.now() - timedelta(seconds=1)
    batch.save()
    response = redeem(alice, codes[0])
    assert (response.status_code, response.json()["error"]["code"]) == (
        410,
        "code_expired",
    )
    assert not LedgerEntry.objects.filter(method="Discount").exists()


def test_a_shared_code_serves_exactly_its_uses_when_many_race(transactional_db):
    _, (code,) = promotion(kind=PromotionKind.SHARED, uses=5, amount=2 * USD)
    accounts = [new_account() for _ in range(12)]

    from gifts.services import code_redeem

    results = run_concurrently(
        [lambda a=a: code_redeem(account=a, code=code) for a in accounts], workers=12
    )
    won = [r for r in results if not isinstance(r, Exception)]
    assert len(won) == 5, results
    assert all(type(r).__name__ == "CodeUsed" for r in results if r not in won)
    assert (
        sum(
            CreditLot.objects.filter(source=LotSource.GIFT).values_list(
                "amount_nanos", flat=True
            )
        )
        == 10 * USD
    )
    assert_ledger_whole(*accounts)


def test_five_wrong_codes_pause_redeeming_for_15_minutes(db, alice):
    _, (good,) = promotion(count=1)
    for left in (4, 3, 2, 1):
        response = redeem(alice, code_generate())
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "unknown_code"
        assert f"{left} more wrong code" in response.json()["error"]["message"]
    # A typo is no attempt.
    typo = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert redeem(alice, typo).json()["error"]["code"] == "invalid_code"
    fifth = redeem(alice, code_generate())
    assert fifth.status_code == 429
    assert 899 <= int(fifth["Retry-After"]) <= 900
    assert "try again in 15 minutes" in fifth.json()["error"]["message"]
    # Even the right code waits.
    locked = redeem(alice, good)
    assert locked.status_code == 429 and int(locked["Retry-After"]) > 0
    assert not LedgerEntry.objects.filter(method="Discount").exists()
    # 15 minutes later it works again, and the count started afresh.
    RedeemGuard.objects.filter(account=alice.account).update(
        locked_until=timezone.now() - timedelta(seconds=1),
        last_failure_at=timezone.now() - timedelta(minutes=15, seconds=1),
    )
    assert redeem(alice, good).status_code == 200
    assert (
        "4 more wrong codes"
        in redeem(alice, code_generate()).json()["error"]["message"]
    )


def test_a_pause_is_the_account_s_own(db, alice, bob):
    _, (good,) = promotion(count=1)
    for _ in range(5):
        redeem(alice, code_generate())
    assert redeem(alice, good).status_code == 429
    assert redeem(bob, good).status_code == 200


@pytest.mark.parametrize("body", [{}, {"code": ""}, {"code": "AGIP-1"}])
def test_a_request_without_a_code_names_the_field(db, alice, body):
    response = (
        redeem(alice, body.get("code"))
        if body
        else api(alice).post("/api/v1/gift-codes/redeem", {}, format="json")
    )
    assert response.status_code == 400
    assert "code" in response.content.decode()


def test_a_code_tried_while_wrong_ones_fill_the_pause_waits_for_them(
    transactional_db,
):
    # Wrong codes sent at the same moment as a right one: the right one is
    # looked up only once the wrong ones are counted, so guessing in parallel
    # gets no more tries than guessing one at a time.
    import threading
    import time

    from django.db import connection, transaction

    from gifts.errors import RedeemLocked
    from gifts.redemption import code_redeem, redeem_failure_record

    account = new_account()
    _, (good,) = promotion(count=1)
    counted, outcome = threading.Event(), {}

    def wrong_codes_in_flight():
        try:
            with transaction.atomic():
                for _ in range(5):
                    redeem_failure_record(account=account)
                counted.set()
                time.sleep(1.0)  # the right code arrives meanwhile
        finally:
            connection.close()

    def right_code():
        counted.wait(timeout=30)
        try:
            outcome["result"] = code_redeem(account=account, code=good)
        except Exception as exc:
            outcome["result"] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=wrong_codes_in_flight)]
    threads.append(threading.Thread(target=right_code))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert isinstance(outcome["result"], RedeemLocked), outcome
    assert not LedgerEntry.objects.filter(method="Discount").exists()
    assert RedeemGuard.objects.get(account=account).lockouts == 1
    assert_ledger_whole(account)


def test_a_code_typed_on_the_console_page_is_hidden_from_error_reports(db, alice):
    # A crash while redeeming would mail Django's error report with the POST
    # body: the code is blanked there, as a password is.
    from django.test import Client
    from django.urls import reverse
    from django.views.debug import SafeExceptionReporterFilter

    client = Client()
    client.force_login(alice)
    code = code_generate()
    response = client.post(reverse("console:gift-codes"), {"code": code})
    assert response.status_code == 400
    reported = SafeExceptionReporterFilter().get_post_parameters(response.wsgi_request)
    assert reported["code"] != code and set(reported["code"]) == {"*"}
