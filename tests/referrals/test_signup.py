"""A signup through a referral link records who referred whom, once; an
unknown code is a signup like any other; a self-referral is kept, refused,
and counts for nothing."""

from __future__ import annotations

import pytest

from accounts.models import Account, User
from referrals import rules
from referrals.models import Referral, ReferralCode, ReferralStatus, RefusalReason
from referrals.services import referral_code_for, referral_record
from tests.support.referrals import code_of, signup_with
from tests.support.world import PASSWORD

pytestmark = pytest.mark.django_db


def test_every_new_account_has_a_short_url_safe_code(alice, bob):
    codes = {code_of(alice), code_of(bob)}
    assert len(codes) == 2
    for code in codes:
        assert len(code) == rules.CODE_LENGTH
        assert set(code) <= set(rules.ALPHABET)
    # Asked again, the same one.
    assert referral_code_for(account=alice.account).code == code_of(alice)


def test_an_account_made_before_the_program_gets_its_code_on_first_use(bob):
    ReferralCode.objects.filter(account=bob.account).delete()
    made = referral_code_for(account=bob.account)
    assert referral_code_for(account=bob.account) == made


def test_the_signup_page_keeps_the_ref_of_its_link(client, alice):
    page = client.get("/signup", {"ref": code_of(alice)})
    assert f'name="ref" value="{code_of(alice)}"' in page.content.decode()


def test_a_signup_with_a_code_records_the_referral(alice):
    carol = signup_with(code_of(alice), "carol@example.com")

    referral = Referral.objects.get()
    assert (referral.referrer, referral.referee) == (alice.account, carol.account)
    assert referral.status == ReferralStatus.ACTIVE
    assert referral.code == code_of(alice)


def test_a_code_typed_in_capitals_is_the_same_code(alice):
    carol = signup_with(code_of(alice).upper(), "carol@example.com")
    assert Referral.objects.get().referee == carol.account


def test_a_failed_form_keeps_the_code_for_the_next_try(client, alice):
    client.get("/signup", {"ref": code_of(alice)})
    response = client.post(
        "/signup",
        {
            "email": "carol@example.com",
            "full_name": "Carol",
            "password1": PASSWORD,
            "password2": "something else entirely",
            "ref": code_of(alice),
        },
    )
    assert response.status_code == 200
    assert f'value="{code_of(alice)}"' in response.content.decode()
    assert not Referral.objects.exists()


@pytest.mark.parametrize(
    "ref", ["nosuchcode", "", "<script>", "x" * 500, "a b", "ünïcode"]
)
def test_an_unknown_or_malformed_code_is_a_signup_without_a_referral(alice, ref):
    carol = signup_with(ref, "carol@example.com")
    assert Account.objects.filter(owner=carol).exists()
    assert not Referral.objects.exists()


def test_a_signup_without_a_link_refers_no_one(alice):
    signup_with(None, "carol@example.com")
    assert not Referral.objects.exists()


@pytest.mark.parametrize(
    ("referrer_email", "alias"),
    [
        ("jane.doe@gmail.com", "janedoe+promo@googlemail.com"),
        ("jane.doe@gmail.com", "J.A.N.E.D.O.E@gmail.com"),
        ("janedoe@googlemail.com", "jane.doe+2@gmail.com"),
        ("jane@example.com", "Jane+again@Example.com"),
    ],
)
def test_a_self_referral_by_an_email_alias_is_refused_and_kept(referrer_email, alias):
    from accounts.services import user_signup

    jane = user_signup(email=referrer_email, password=PASSWORD)
    alias_user = signup_with(code_of(jane), alias)

    referral = Referral.objects.get(referee=alias_user.account)
    assert referral.status == ReferralStatus.REFUSED
    assert referral.refused_reason == RefusalReason.SAME_EMAIL
    assert not Referral.objects.filter(
        referrer=jane.account, status=ReferralStatus.ACTIVE
    ).exists()


def test_dots_make_another_mailbox_outside_gmail(alice):
    from accounts.services import user_signup

    jane = user_signup(email="jane.doe@example.com", password=PASSWORD)
    other = signup_with(code_of(jane), "janedoe@example.com")
    assert Referral.objects.get(referee=other.account).status == ReferralStatus.ACTIVE


def test_an_account_cannot_refer_itself(alice):
    referral = referral_record(referee=alice.account, code=code_of(alice))
    assert referral.status == ReferralStatus.REFUSED
    assert referral.refused_reason == RefusalReason.SELF


def test_a_referee_is_referred_once(alice, bob):
    carol = signup_with(code_of(alice), "carol@example.com")
    assert referral_record(referee=carol.account, code=code_of(bob)) is None
    assert referral_record(referee=carol.account, code=code_of(alice)) is None
    assert Referral.objects.get().referrer == alice.account


def test_a_failing_program_never_fails_the_signup(alice, monkeypatch, caplog):
    from referrals import receivers

    def broken(**kwargs):
        raise RuntimeError("the referral program is down")

    monkeypatch.setattr(receivers, "referral_record", broken)
    carol = signup_with(code_of(alice), "carol@example.com")
    assert User.objects.filter(pk=carol.pk).exists()
    assert "referral_at_signup failed" in caplog.text
    assert code_of(alice) not in caplog.text


def test_email_normalised():
    assert rules.email_normalised("A.B+x@GoogleMail.com") == "ab@gmail.com"
    assert rules.email_normalised("a.b+x@example.com") == "a.b@example.com"
    assert rules.email_normalised(" Bob@Example.COM ") == "bob@example.com"
