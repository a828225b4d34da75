"""Operators read the program in admin: codes, referrals, rewards and the
refused attempts with their reason; none of it can be added, changed or
deleted there."""

from __future__ import annotations

import pytest

from tests.support.referrals import code_of, signup_with

pytestmark = pytest.mark.django_db

PAGES = [
    "referralcode",
    "referral",
    "referralreward",
    "refusedreferral",
    "refusedreward",
]


def test_operators_read_every_list_and_see_why_a_referral_was_refused(client, ops):
    from accounts.services import user_signup
    from tests.support.world import PASSWORD

    jane = user_signup(email="jane.doe@gmail.com", password=PASSWORD)
    signup_with(code_of(jane), "janedoe+x@googlemail.com")
    client.force_login(ops)

    for name in PAGES:
        page = client.get(f"/admin/referrals/{name}/")
        assert page.status_code == 200, name
        assert client.get(f"/admin/referrals/{name}/add/").status_code == 403
    refused = client.get("/admin/referrals/refusedreferral/").content.decode()
    assert "Self-referral: the same email (alias)" in refused
    assert "janedoe+x@googlemail.com" in refused
