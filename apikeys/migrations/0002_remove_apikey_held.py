"""A key's held amount is no longer kept on the key: it is the sum of the
active holds placed for it (``ApiKey.held_nanos``), so no sweep can leave it
wrong."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("apikeys", "0001_initial")]

    operations = [
        migrations.RemoveConstraint(
            model_name="apikey", name="apikey_held_not_negative"
        ),
        migrations.RemoveField(model_name="apikey", name="held_nanos"),
    ]
