"""The console's Data retention page: the account's switch that keeps the
bodies of its requests and answers, and for how many days
(proxy/body_retention.py). At the top floor with the other console pages; the
same switch is ``GET, PUT /api/v1/data-retention``."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render

from accounts.access import account_required
from accounts.models import Account
from proxy.body_retention import (
    DAYS_MAX,
    DAYS_MIN,
    BodiesBeingDeleted,
    body_retention_get,
    body_retention_set,
    request_bodies_count,
)


class DataRetentionForm(forms.Form):
    store_bodies = forms.BooleanField(
        label="Store request and response bodies", required=False
    )
    retention_days = forms.IntegerField(
        label="Keep each body for (days)",
        min_value=DAYS_MIN,
        max_value=DAYS_MAX,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
        help_text=f"From {DAYS_MIN} to {DAYS_MAX} days. A change applies to the "
        "bodies stored from then on; those stored already keep their date.",
    )


@account_required
def data_retention(request, account: Account):
    retention = body_retention_get(account=account)
    status = 200
    if request.method == "POST":
        form = DataRetentionForm(request.POST)
        if form.is_valid():
            days = form.cleaned_data["retention_days"]
            try:
                retention = body_retention_set(
                    account=account,
                    store_bodies=form.cleaned_data["store_bodies"],
                    retention_days=days,
                )
            except BodiesBeingDeleted as busy:
                form.add_error(None, str(busy))
            else:
                if retention.enabled:
                    messages.success(
                        request,
                        "Request and response bodies are stored from now on, each "
                        f"for {days} day{'s' if days != 1 else ''}.",
                    )
                else:
                    messages.success(
                        request,
                        "Bodies are not stored. Those stored before are no longer "
                        "shown, and are being deleted.",
                    )
                return redirect("console:data-retention")
        status = 400
    else:
        form = DataRetentionForm(
            initial={
                "store_bodies": retention.enabled,
                "retention_days": retention.days,
            }
        )
    context = {
        "nav": "data-retention",
        "form": form,
        "retention": retention,
        "stored": request_bodies_count(account=account),
    }
    return render(request, "console/data_retention.html", context, status=status)
