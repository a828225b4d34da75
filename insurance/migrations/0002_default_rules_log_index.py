"""The default coverage rules (one per kind, for every model) and the index
the daily scan reads yesterday's request logs by.

The defaults are written here as constants, not read from a file: this
migration is history. Operators change them in admin afterwards.

The index is on the request logs' table (``proxy``'s, below this app): a BRIN
index on ``created_at``. Logs are inserted in about the order of their time,
so a block range summary finds one day's blocks of a month's partition; the
index costs a few pages per partition and nothing measurable per insert, so
the proxy's settle path does not pay for it. Made on the partitioned table,
it is made on every partition, present and future. ``autosummarize``: the
block ranges filled since the last vacuum are summarized by autovacuum, not
left for the scan to read whole."""

from django.db import migrations

DEFAULT_RULES = [
    # (kind, payout percent, ttft_ms, latency_ms, truncated_percent)
    ("stream_failure", 100, None, None, None),
    ("empty_output", 100, None, None, None),
    ("truncated_output", 100, None, None, 10),
    ("high_latency", 100, 60_000, 600_000, None),
]


def rules_install(apps, schema_editor):
    CoverageRule = apps.get_model("insurance", "CoverageRule")
    for kind, percent, ttft, latency, truncated in DEFAULT_RULES:
        CoverageRule.objects.get_or_create(
            model="",
            kind=kind,
            defaults={
                "payout_percent": percent,
                "ttft_ms": ttft,
                "latency_ms": latency,
                "truncated_percent": truncated,
            },
        )


def rules_remove(apps, schema_editor):
    CoverageRule = apps.get_model("insurance", "CoverageRule")
    CoverageRule.objects.filter(model="").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("insurance", "0001_initial"),
        ("proxy", "0009_log_max_tokens"),
    ]

    operations = [
        migrations.RunPython(rules_install, rules_remove),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS insurance_log_created_brin "
            "ON proxy_requestlog USING brin (created_at) "
            "WITH (pages_per_range = 32, autosummarize = on)",
            "DROP INDEX IF EXISTS insurance_log_created_brin",
        ),
    ]
