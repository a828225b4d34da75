from __future__ import annotations


class AlertSettingsInvalid(ValueError):
    """A setting out of its range; nothing was saved. ``field`` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
