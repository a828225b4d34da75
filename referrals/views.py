"""The console's Referrals page (/console/referrals): the link to share with
a copy button, signups, what was earned, and the rewards."""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from accounts.access import account_required
from accounts.models import Account
from money import format_usd
from referrals.selectors import referral_rewards, referral_summary
from referrals.services import referral_code_for


@never_cache
@account_required
def referrals_page(request, account: Account):
    summary = referral_summary(account=account, code=referral_code_for(account=account))
    context = {
        "nav": "referrals",
        "summary": summary,
        "earned": format_usd(summary.earned_nanos),
        "reward": format_usd(settings.REFERRAL_REWARD_NANOS),
        "cap": format_usd(settings.REFERRAL_MONTHLY_CAP_NANOS),
        "rewards": [
            {
                "row": row,
                "top_up": format_usd(row.topup_nanos),
                "amount": format_usd(row.amount_nanos),
                "net": format_usd(row.net_nanos),
            }
            for row in referral_rewards(account=account)
        ],
    }
    return render(request, "console/referrals.html", context)
