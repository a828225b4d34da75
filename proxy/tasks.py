from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from proxy.models import BatchDone


@shared_task
def batches_forget() -> int:
    """Retries come within seconds: a day of batch keys is plenty."""
    deleted, _ = BatchDone.objects.filter(
        done_at__lt=timezone.now() - timedelta(days=1)
    ).delete()
    return deleted
