"""Insurance's refusals, one base for the domain; agipower.api_errors maps
them to HTTP (``status``), the console shows their message."""

from __future__ import annotations


class InsuranceError(Exception):
    """A claim or a decision that was refused; nothing was written."""

    code = "insurance_error"
    status = 400


class ReasonInvalid(InsuranceError):
    """A reason that is missing, too long or not plain text; ``field`` names
    it."""

    code = "invalid"

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class ClaimWindowClosed(InsuranceError):
    code = "claim_window_closed"


class NothingToCompensate(InsuranceError):
    code = "nothing_to_compensate"


class ClaimExists(InsuranceError):
    code = "claim_exists"
    status = 409


class AlreadyCompensated(InsuranceError):
    code = "already_compensated"
    status = 409


class ClaimDecided(InsuranceError):
    code = "claim_decided"
    status = 409
