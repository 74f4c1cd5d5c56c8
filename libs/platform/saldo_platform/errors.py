"""Errors a command can end in; the HTTP layer turns each into an RFC 9457 problem."""

from __future__ import annotations


class SaldoError(Exception):
    status = 400
    title = "Bad request"
    type = "about:blank"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class DomainRuleViolated(SaldoError):
    """The command breaks a business rule (e.g. refund more than is refundable)."""

    status = 422
    title = "Rule violated"
    type = "https://saldo.dev/problems/rule-violated"


class NotFound(SaldoError):
    status = 404
    title = "Not found"
    type = "https://saldo.dev/problems/not-found"


class Conflict(SaldoError):
    status = 409
    title = "Conflict"
    type = "https://saldo.dev/problems/conflict"


class PreconditionFailed(SaldoError):
    status = 412
    title = "Precondition failed"
    type = "https://saldo.dev/problems/precondition-failed"
