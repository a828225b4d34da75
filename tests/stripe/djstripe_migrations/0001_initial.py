from django.conf import settings
from django.db import migrations

from tests.stripe.djstripe_migrations import DjstripeTablesCreate

# The subscriber model (accounts.Account) must exist before djstripe_customer's
# foreign key to it.
SUBSCRIBER_APP = settings.DJSTRIPE_SUBSCRIBER_MODEL.split(".")[0]


class Migration(migrations.Migration):
    initial = True
    dependencies = [(SUBSCRIBER_APP, "__latest__")]
    operations = [DjstripeTablesCreate()]
