"""Invoices in tests: top-ups paid and credited the way the payments code does
it (a TopUp row, ``topup_credit``, then its invoice by ``topup_invoice_issue``
in the same transaction), and PDFs read as text and as pictures with
poppler-utils."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Account
from billing.ledger.grants import topup_credit
from billing.models import TopUp, TopUpMethod, TopUpStatus
from billing.payments.invoicing import topup_invoice_issue
from invoices.models import Invoice
from money import percent_of, usd_to_nanos

_intents = itertools.count(1)


def topup_paid(
    account: Account, amount: str = "100", *, card: bool = True, **fields
) -> TopUp:
    """A top-up whose payment succeeded, not yet credited."""
    amount_nanos = usd_to_nanos(amount)
    values = {
        "account": account,
        "amount_nanos": amount_nanos,
        "bonus_nanos": percent_of(amount_nanos, django_settings.BONUS_RATE),
        "method": TopUpMethod.CARD if card else TopUpMethod.ALIPAY,
        "payment_intent_id": f"pi_test_{next(_intents):06d}",
        "status": TopUpStatus.SUCCEEDED,
        "succeeded_at": timezone.now(),
        **({"card_brand": "visa", "card_last4": "4242"} if card else {}),
        **fields,
    }
    return TopUp.objects.create(**values)


@transaction.atomic
def topup_credit_and_invoice(topup: TopUp) -> Invoice:
    """What the payments code does when a payment succeeds: credit the top-up
    (and its bonus) and issue its invoice, in one transaction."""
    credited = topup_credit(
        account=topup.account,
        amount_nanos=topup.amount_nanos,
        idempotency_key=f"topup:{topup.payment_intent_id}",
        reference=topup.payment_intent_id,
        method=topup.method_label,
    )
    topup.entry = credited.topup_entry
    topup.save(update_fields=["entry"])
    return topup_invoice_issue(topup=topup)


def issue(account: Account, amount: str = "100", **fields) -> Invoice:
    return topup_credit_and_invoice(topup_paid(account, amount, **fields))


def issue_at(moment: datetime, account: Account, amount: str = "100") -> Invoice:
    with mock.patch("django.utils.timezone.now", return_value=moment):
        return issue(account, amount)


def _poppler(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(
            f"{tool} is not installed: the PDF tests read invoices with poppler-utils "
            "(apt-get install poppler-utils)",
            pytrace=False,
        )
    return path


def pdf_text(pdf: bytes | str | Path, tmp_path: Path) -> str:
    """The PDF's text, laid out as on the page (pdftotext -layout)."""
    path = _as_file(pdf, tmp_path)
    result = subprocess.run(  # noqa: S603 - a fixed tool on a file of ours
        [_poppler("pdftotext"), "-layout", str(path), "-"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return result.stdout.decode()


def pdf_page_png(pdf: bytes | str | Path, out: Path, *, dpi: int = 60) -> Path:
    """Page 1 of the PDF as a PNG (pdftoppm -png -r 60)."""
    path = _as_file(pdf, out.parent)
    subprocess.run(  # noqa: S603 - a fixed tool on a file of ours
        [
            _poppler("pdftoppm"),
            "-png",
            "-r",
            str(dpi),
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
            str(path),
            str(out.with_suffix("")),
        ],
        check=True,
        timeout=60,
    )
    return out.with_suffix(".png")


def pdf_pages(pdf: bytes | str | Path, tmp_path: Path) -> int:
    path = _as_file(pdf, tmp_path)
    result = subprocess.run(  # noqa: S603 - a fixed tool on a file of ours
        [_poppler("pdfinfo"), str(path)],
        capture_output=True,
        check=True,
        timeout=60,
    )
    for line in result.stdout.decode().splitlines():
        if line.startswith("Pages:"):
            return int(line.split()[1])
    raise AssertionError("pdfinfo gave no page count")


def _as_file(pdf: bytes | str | Path, folder: Path) -> Path:
    if isinstance(pdf, str | Path):
        return Path(pdf)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"invoice-{next(_intents)}.pdf"
    path.write_bytes(pdf)
    return path
