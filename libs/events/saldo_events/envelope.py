"""The envelope every integration event carries, and the money and bank types they share."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt

from saldo_kernel import money
from saldo_kernel.currencies import check_currency

# The one definition of a currency for every contract and HTTP body (rule M6): three capital
# letters (the JSON Schema's pattern) that name a real ISO 4217 currency (checked on validation).
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code"),
                         AfterValidator(check_currency)]
Amount = Annotated[StrictInt, Field(description="Integer minor units (øre, cents). Never a float.")]


class Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Money(Contract):
    """Integer minor units with an ISO 4217 currency (rule M1)."""

    amount: Amount
    currency: CurrencyCode

    @classmethod
    def of(cls, value: money.Money) -> Money:
        return cls(amount=value.minor_units, currency=value.currency)

    @property
    def value(self) -> money.Money:
        """As the domains count it: `saldo_kernel.money.Money`."""
        return money.Money(self.amount, self.currency)


class BankAccount(Contract):
    """An IBAN (+ BIC) or a Danish registration number + account number (rule M4)."""

    iban: str | None = None
    bic: str | None = None
    registration_number: str | None = None
    account_number: str | None = None


EVENT_TYPES: dict[str, type[IntegrationEvent]] = {}


class IntegrationEvent(Contract):
    """Published on `saldo.<service>.v1`; a contract other services depend on.

    Changes are backward compatible within a schema version; JSON Schemas are pinned by tests.
    """

    SERVICE: ClassVar[str] = ""
    SCHEMA_VERSION: ClassVar[int] = 1

    event_id: UUID
    business_unit: str
    aggregate_id: UUID
    aggregate_version: StrictInt  # rule M1: no floats anywhere, not even 1.0
    occurred_at: datetime
    actor: str
    correlation_id: str
    causation_id: str | None = None
    traceparent: str | None = None
    schema_version: StrictInt = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.SERVICE:
            EVENT_TYPES[cls.event_type()] = cls

    @classmethod
    def event_type(cls) -> str:
        """The CloudEvents `type`, e.g. `dk.saldo.invoicing.InvoiceIssued`."""
        return f"dk.saldo.{cls.SERVICE}.{cls.__name__}"

    @classmethod
    def source(cls) -> str:
        return f"/saldo/{cls.SERVICE}"
