"""What accounts tell the programs above them.

Accounts sit on a low floor and know nothing of the programs built on a
signup (referrals); they announce it instead, and each program listens.
"""

from __future__ import annotations

from django.dispatch import Signal

# A person signed up through the signup page, after the user (and its account)
# was committed: ``user`` (accounts.models.User) and ``ref`` (the referral code
# the signup link carried, "" when none; whatever the visitor sent, unchecked).
user_signed_up = Signal()
