"""The numbers of gift cards and codes, in one place.

Daily purchase limits count the cards an account started in the UTC day whose
payment has not failed or been canceled: started and paid ones alike. Counting
only paid cards would let a buyer start any number at once and pay them all;
an abandoned purchase counts until its payment fails, which a limit of ten a
day absorbs.
"""

from __future__ import annotations

from datetime import timedelta

from money import NANOS_PER_USD

MIN_CARD_NANOS = 5 * NANOS_PER_USD
MAX_CARD_NANOS = 500 * NANOS_PER_USD
DAILY_CARDS = 10
DAILY_NANOS = 1_000 * NANOS_PER_USD

# A card the buyer may take back: unredeemed, never emailed to a recipient by
# us, paid less than this long ago; it goes back to the card it was paid by,
# less billing's self-refund fee (billing.payments.rules.refund_fee_nanos).
REFUND_WINDOW = timedelta(hours=24)

# Wrong codes: this many in a row (each within the window of the one before)
# pause redemption for the account for the window.
REDEEM_FAILURE_LIMIT = 5
REDEEM_LOCK = timedelta(minutes=15)

# What the history shows beside the kind (billing: LedgerEntry.method).
GIFT_CARD_METHOD = "Gift card"
PROMOTION_METHOD = "Discount"
