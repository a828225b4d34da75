"""The invoice tests' fixtures: PDFs in the test's own folder, and alice's
billing profile. Their helpers (top-ups paid, credited and invoiced; PDFs as
text and pictures) are in tests/support/invoices.py."""

from __future__ import annotations

import pytest

from accounts.models import BillingProfile


@pytest.fixture(autouse=True)
def _invoice_media(settings, tmp_path):
    # PDFs go to the test's own folder, not var/media.
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def alice_profile(alice) -> BillingProfile:
    return BillingProfile.objects.create(
        account=alice.account,
        name="Wonderland Analytics Ltd",
        country="GB",
        address_line1="12 Rabbit Hole Lane",
        address_line2="Suite 4",
        city="Oxford",
        postal_code="OX1 1AA",
        tax_id="GB123456789",
    )
