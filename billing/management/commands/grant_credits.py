from __future__ import annotations

import uuid

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Account, User
from accounts.selectors import account_by_email
from accounts.validators import unsafe_character, unsafe_character_message
from billing.errors import BillingError
from billing.ledger.grants import GRANT_SOURCES, credit_grant
from money import MoneyError, format_usd, usd_to_nanos


class Command(BaseCommand):
    help = "Grant a gift, referral, compensation or adjustment to the account of EMAIL."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument(
            "amount", help="USD, e.g. 25 or -3.50 (negative: adjustment)"
        )
        parser.add_argument(
            "--kind", required=True, choices=sorted(s.value for s in GRANT_SOURCES)
        )
        parser.add_argument("--reason", required=True)
        parser.add_argument("--pool", choices=["bonus", "topup"], default="bonus")
        parser.add_argument(
            "--operator", help="email of the staff user granting it (recorded as actor)"
        )
        parser.add_argument(
            "--idempotency-key",
            help="repeat a grant safely: the same key grants once "
            "(default: a new key each run)",
        )

    def handle(self, *args, **options):
        try:
            account = account_by_email(options["email"])
        except Account.DoesNotExist:
            raise CommandError(f"no account for {options['email']}") from None
        try:
            # Negative for an adjustment that takes credits back.
            amount_nanos = usd_to_nanos(options["amount"], signed=True)
        except MoneyError as exc:
            raise CommandError(f"amount: {exc}") from None
        if (char := unsafe_character(options["reason"], multiline=True)) is not None:
            raise CommandError(f"reason: {unsafe_character_message(char)}")
        actor = None
        if options["operator"]:
            try:
                actor = User.objects.get(
                    email__iexact=options["operator"], is_staff=True
                )
            except User.DoesNotExist:
                raise CommandError(f"no staff user {options['operator']}") from None
        key = options["idempotency_key"] or f"cli:{uuid.uuid4().hex}"
        try:
            entry = credit_grant(
                account=account,
                source=options["kind"],
                amount_nanos=amount_nanos,
                pool=options["pool"],
                reason=options["reason"],
                actor=actor,
                idempotency_key=key,
            )
        except BillingError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"{entry.get_kind_display()} of {format_usd(entry.amount_nanos, 9)} for "
            f"{account.owner.email}: entry {entry.pk}"
        )
