"""How a command can fail, in the operators' words. No HTTP here: the HTTP layer maps each
kind to its status and problem type in one place (`saldo_platform.http.problems`)."""

from __future__ import annotations


class SaldoError(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class DomainRuleViolated(SaldoError):
    """The command breaks a business rule (e.g. refund more than is refundable)."""


class NotFound(SaldoError):
    """The resource does not exist, or belongs to another business unit (rule M3)."""


class Conflict(SaldoError):
    """The command cannot apply in the resource's current state (e.g. already paid out)."""


class PreconditionFailed(SaldoError):
    """The caller acted on a version of the resource that is no longer current (If-Match)."""
