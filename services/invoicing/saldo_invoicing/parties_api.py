"""HTTP routes of the business entity, customers and subscriptions (rules M4, M5, C1, C2).

The entity and customers are PUT whole: 201 when registered, 200 when replaced (or already
so), with their version as ETag and an optional If-Match. A subscription is started by a POST.
Identifiers are checked by their field types (`saldo_platform.http.fields`), so a wrong IBAN,
EAN or e-mail is a 422 naming the field before anything is written.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import AfterValidator, AwareDatetime, Field, StrictBool, StrictInt, model_validator

from saldo_events.envelope import CurrencyCode
from saldo_invoicing import queries
from saldo_invoicing.application import InvoicingApplication
from saldo_invoicing.domain.channels import InvoicingMethod
from saldo_invoicing.domain.parties import (
    MAX_PREFIX,
    MAX_REMINDERS,
    Agreement,
    CustomerDetails,
    EntityDetails,
    PostalAddress,
    SubscriptionPeriod,
)
from saldo_invoicing.queries import BusinessEntityOut, CustomerOut, SubscriptionOut
from saldo_kernel.money import Money
from saldo_platform.http.app import IfMatch, etag, found_or_404, state
from saldo_platform.http.auth import Operator, Reader
from saldo_platform.http.bodies import MinorUnits
from saldo_platform.http.bodies import RequestBody as Body
from saldo_platform.http.fields import BankAccountIn, CountryCode, CvrNumber, Ean, Email, TimeZoneName
from saldo_platform.http.openapi import WHY
from saldo_platform.http.pages import Page, Pages
from saldo_platform.http.problems import PROBLEM

router = APIRouter()

# A PUT can conflict with the current state too (a currency set, an agreement cancelled), which
# the shared OpenAPI additions declare for POSTs only.
CONFLICT: dict[int | str, dict[str, Any]] = {409: {
    "description": WHY[409], "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}}}

Text = Annotated[str, Field(min_length=1, max_length=200)]
CustomerId = Annotated[str, Path(min_length=1, max_length=100,
                                 description="the operator's own id, e.g. a subscriber number")]


class PostalAddressIn(Body):
    lines: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        min_length=1, max_length=4, description="street and number, c/o …: 1 to 4 lines")
    postal_code: str = Field(min_length=1, max_length=20)
    city: str = Field(min_length=1, max_length=100)
    country: CountryCode

    def value(self) -> PostalAddress:
        return PostalAddress(lines=list(self.lines), postal_code=self.postal_code, city=self.city,
                             country=self.country)


class AgreementIn(Body):
    """A Betalingsservice mandate, card agreement or MobilePay agreement (rules C1, R4)."""

    reference: str = Field(min_length=1, max_length=100, description="the provider's agreement id")
    status: Literal["active", "cancelled"]
    cancelled_at: AwareDatetime | None = Field(
        default=None, description="when it was cancelled; given exactly when status is cancelled")

    @model_validator(mode="after")
    def _cancelled_at_iff_cancelled(self) -> AgreementIn:
        if (self.status == "cancelled") != (self.cancelled_at is not None):
            raise ValueError("cancelled_at is given exactly when the status is cancelled")
        return self

    def value(self) -> Agreement:
        return Agreement(reference=self.reference, status=self.status, cancelled_at=self.cancelled_at)


def _agreement(agreement: AgreementIn | None) -> Agreement | None:
    return agreement.value() if agreement else None


def _increasing(days: list[int]) -> list[int]:
    if any(b <= a for a, b in zip(days, days[1:], strict=False)):
        raise ValueError(f"the days must be strictly increasing, e.g. [7, 14], not {days} (rule I4)")
    return days


def _fik_creditor(number: str) -> str:
    if not re.fullmatch(r"[0-9]{8}", number):
        raise ValueError("the FIK creditor number is 8 digits; every +71 payment reference ends "
                         "with it (rule I1)")
    return number


ReminderDays = Annotated[list[Annotated[StrictInt, Field(ge=1, le=365)]], Field(
    max_length=MAX_REMINDERS, description="days after the due date, strictly increasing, e.g. "
    "[7, 14]; [] sends no reminders (rule I4)"), AfterValidator(_increasing)]
FikCreditorNumber = Annotated[str, Field(max_length=8, json_schema_extra={"pattern": "^[0-9]{8}$"},
                                         description="FIK creditor number for +71 references (rule I1)"),
                              AfterValidator(_fik_creditor)]


class BusinessEntityIn(Body):
    """The business unit's business entity, whole (rules M4, M5, B5, M2, I4, I1)."""

    legal_name: Text
    registration_number: CvrNumber
    postal_address: PostalAddressIn | None = None
    bank_account: BankAccountIn
    invoicing_method: InvoicingMethod
    payment_message_prefix: str = Field(min_length=1, max_length=MAX_PREFIX,
                                        description="begins every payment message (rule B5)")
    currency: CurrencyCode
    time_zone: TimeZoneName = "Europe/Copenhagen"
    reminder_schedule_days: ReminderDays
    fik_creditor_number: FikCreditorNumber

    def details(self) -> EntityDetails:
        return EntityDetails(
            legal_name=self.legal_name, registration_number=self.registration_number,
            postal_address=self.postal_address.value() if self.postal_address else None,
            bank_account=self.bank_account.as_dict(), invoicing_method=self.invoicing_method,
            payment_message_prefix=self.payment_message_prefix, currency=self.currency,
            time_zone=self.time_zone, reminder_schedule_days=list(self.reminder_schedule_days),
            fik_creditor_number=self.fik_creditor_number)


class CustomerIn(Body):
    """A customer, whole (rule C1)."""

    name: Text
    email: Email
    postal_address: PostalAddressIn
    ean: Ean | None = Field(default=None, description="set: invoices go as e-invoices (rule C3)")
    bank_account: BankAccountIn | None = None
    betalingsservice_mandate: AgreementIn | None = None
    e_invoice_to_online_banking: StrictBool = False
    card_agreement: AgreementIn | None = None
    mobilepay_agreement: AgreementIn | None = None

    def details(self) -> CustomerDetails:
        return CustomerDetails(
            name=self.name, email=self.email, postal_address=self.postal_address.value(),
            ean=self.ean, bank_account=self.bank_account.as_dict() if self.bank_account else None,
            betalingsservice_mandate=_agreement(self.betalingsservice_mandate),
            e_invoice_to_online_banking=self.e_invoice_to_online_banking,
            card_agreement=_agreement(self.card_agreement),
            mobilepay_agreement=_agreement(self.mobilepay_agreement))


class PriceIn(Body):
    amount: MinorUnits
    currency: CurrencyCode = Field(description="the business entity's currency (rule M1)")


class PeriodIn(Body):
    unit: Literal["days", "months", "issues"]
    length: StrictInt = Field(ge=1, le=1000, description="how many days, months or issues")


class StartSubscription(Body):
    customer_id: str = Field(min_length=1, max_length=100)
    product: Text
    price: PriceIn = Field(description="per period")
    period: PeriodIn
    invoicing_method: InvoicingMethod | None = Field(
        default=None, description="the subscription's own; null: the business entity's (rule C2)")
    started_on: date | None = Field(default=None,
                                    description="default: today in the business unit's time zone")


def app(request: Request) -> InvoicingApplication:
    return state(request, "application")  # type: ignore[no-any-return]


@router.put("/business-entity", tags=["business entity"], response_model=BusinessEntityOut,
            responses=CONFLICT)
def put_business_entity(body: BusinessEntityIn, who: Operator, request: Request, response: Response,
                        expected_version: IfMatch) -> BusinessEntityOut:
    """Set up or replace the business unit's business entity (rules M4, M5): 201 the first
    time, 200 after. Its currency cannot change once set (rule M1)."""
    entity, registered = app(request).put_business_entity(
        business_unit=who.business_unit, details=body.details(), expected_version=expected_version)
    response.headers["ETag"] = etag(entity.version)
    if registered:
        response.status_code = 201
        response.headers["Location"] = request.url_for("get_business_entity").path
    return BusinessEntityOut.of(entity)


@router.get("/business-entity", tags=["business entity"], response_model=BusinessEntityOut)
async def get_business_entity(who: Reader, request: Request, response: Response) -> BusinessEntityOut:
    found = await queries.business_entity(state(request, "db"), who.business_unit)
    return found_or_404(found, response, f"the business entity of business unit {who.business_unit}")


@router.put("/customers/{customer_id}", tags=["customers"], response_model=CustomerOut,
            responses=CONFLICT)
def put_customer(customer_id: CustomerId, body: CustomerIn, who: Operator, request: Request,
                 response: Response, expected_version: IfMatch) -> CustomerOut:
    """Register a customer under your own id, or replace it whole (rule C1): 201 when
    registered, 200 after. A cancelled agreement stays cancelled."""
    customer, registered = app(request).put_customer(
        business_unit=who.business_unit, customer_id=customer_id, details=body.details(),
        expected_version=expected_version)
    response.headers["ETag"] = etag(customer.version)
    if registered:
        response.status_code = 201
        response.headers["Location"] = request.url_for(
            "get_customer", customer_id=quote(customer_id, safe="")).path
    return CustomerOut.of(customer)


@router.get("/customers/{customer_id}", tags=["customers"], response_model=CustomerOut)
async def get_customer(customer_id: CustomerId, who: Reader, request: Request,
                       response: Response) -> CustomerOut:
    found = await queries.customer(state(request, "db"), who.business_unit, customer_id)
    return found_or_404(found, response, f"customer {customer_id}")


@router.get("/customers", tags=["customers"], response_model=Page[CustomerOut])
async def list_customers(who: Reader, request: Request, paging: Pages) -> Page[CustomerOut]:
    """The business unit's customers in the order they were registered."""
    return await queries.customers(state(request, "db"), who.business_unit, paging)


@router.post("/subscriptions", status_code=201, tags=["subscriptions"], response_model=SubscriptionOut)
def start_subscription(body: StartSubscription, who: Operator, request: Request,
                       response: Response) -> SubscriptionOut:
    """Start a subscription for a registered customer (rule C2), priced in the business
    entity's currency (M1); the business entity must be set up first (409 until then)."""
    subscription = app(request).start_subscription(
        business_unit=who.business_unit, customer_id=body.customer_id, product=body.product,
        price=Money(body.price.amount, body.price.currency),
        period=SubscriptionPeriod(unit=body.period.unit, length=body.period.length),
        invoicing_method=body.invoicing_method, started_on=body.started_on)
    response.headers["ETag"] = etag(subscription.version)
    response.headers["Location"] = request.url_for(
        "get_subscription", subscription_id=str(subscription.id)).path
    return SubscriptionOut.of(subscription)


@router.get("/subscriptions/{subscription_id}", tags=["subscriptions"], response_model=SubscriptionOut)
async def get_subscription(subscription_id: UUID, who: Reader, request: Request,
                           response: Response) -> SubscriptionOut:
    found = await queries.subscription(state(request, "db"), who.business_unit, subscription_id)
    return found_or_404(found, response, f"subscription {subscription_id}")


@router.get("/subscriptions", tags=["subscriptions"], response_model=Page[SubscriptionOut])
async def list_subscriptions(who: Reader, request: Request, paging: Pages,
                             customer_id: Annotated[str | None, Query(max_length=100)] = None,
                             ) -> Page[SubscriptionOut]:
    """The business unit's subscriptions in the order they were started (of one customer, if given)."""
    return await queries.subscriptions(state(request, "db"), who.business_unit, paging,
                                       customer_id=customer_id)
