"""Users made before every user got a billing account (with createsuperuser,
in admin, or ``ensure_operator``) get one now. Billing opens their wallets in
its own migration."""

from django.db import migrations


def accounts_for_users_without_one(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    Account = apps.get_model("accounts", "Account")
    Account.objects.bulk_create(
        [
            Account(owner_id=user_id)
            for user_id in User.objects.filter(account__isnull=True).values_list(
                "id", flat=True
            )
        ]
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_billingprofile"),
    ]

    operations = [
        migrations.RunPython(accounts_for_users_without_one, migrations.RunPython.noop),
    ]
