"""Every account has a wallet: those made before billing opened one for each
new account (the accounts given to users who had none) get theirs now."""

from django.db import migrations


def wallets_for_accounts_without_one(apps, schema_editor):
    Account = apps.get_model("accounts", "Account")
    Wallet = apps.get_model("billing", "Wallet")
    Wallet.objects.bulk_create(
        [
            Wallet(account_id=account_id)
            for account_id in Account.objects.filter(wallet__isnull=True).values_list(
                "id", flat=True
            )
        ]
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_account_for_every_user"),
        ("billing", "0004_topup_autotopup_topup_topup_account_and_more"),
    ]

    operations = [
        migrations.RunPython(
            wallets_for_accounts_without_one, migrations.RunPython.noop
        ),
    ]
