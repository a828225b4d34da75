"""History: this migration once ran billing/sql/ledger_v1.sql as that file was
on the day it ran. The ledger's functions and triggers are now installed after
every migrate, whenever the database differs from the file
(billing/sql_install.py), so this migration does nothing."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = []
