"""Console forms of request logs."""

from __future__ import annotations

from django import forms

from proxy.models import RequestLog


class LogFilterForm(forms.Form):
    """The GET form above a key's request logs: model and a date range (UTC)."""

    model = forms.CharField(
        label="Model",
        required=False,
        max_length=RequestLog._meta.get_field("model").max_length,
        widget=forms.TextInput(attrs={"placeholder": "e.g. openai/gpt-5"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # "from" is a Python keyword, so these two cannot be class attributes;
        # the names match the ``from``/``to`` filters of GET /api/v1/requests.
        for name, label in (("from", "From"), ("to", "To")):
            self.fields[name] = forms.DateField(
                label=label,
                required=False,
                widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            )

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("from"), cleaned.get("to")
        if start and end and end < start:
            self.add_error("to", "The end date is before the start date.")
        return cleaned
