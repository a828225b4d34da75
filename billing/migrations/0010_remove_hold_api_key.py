from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("billing", "0009_hold_owner")]

    operations = [
        migrations.RemoveField(model_name="hold", name="api_key"),
    ]
