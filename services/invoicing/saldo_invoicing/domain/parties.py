"""Who invoices whom, and for what: the business entity (rules M4, M5), customers (C1) and
subscriptions (C2). No I/O here.

Identifiers arrive already checked at the HTTP edge (`saldo_platform.http.fields`: IBAN, BIC,
CVR, EAN, e-mail, country, time zone); what is checked here are the rules between fields and
across changes, which hold however a command arrives.

The business entity and customers are published whole on every change (`Registered`, then
`Updated` with the full state), because their consumers keep snapshots, not diffs.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Literal, NotRequired, TypedDict
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from saldo_invoicing.domain.channels import ChannelFacts, InvoicingMethod, is_invoicing_method
from saldo_invoicing.domain.proration import days_in_period, days_unused, period_end
from saldo_kernel.aggregate import SaldoAggregate
from saldo_kernel.currencies import MINOR_UNITS
from saldo_kernel.errors import Conflict, DomainRuleViolated
from saldo_kernel.money import Money

BankAccount = dict[str, str]  # {iban, bic} or {registration_number, account_number} (rule M4)
AgreementStatus = Literal["active", "cancelled"]
PeriodUnit = Literal["days", "months", "issues"]

MAX_REMINDERS = 10
MAX_PREFIX = 20


class PostalAddress(TypedDict):
    lines: list[str]  # 1 to 4 lines: street, number, c/o …
    postal_code: str
    city: str
    country: str  # ISO 3166-1 alpha-2


class Agreement(TypedDict):
    """A Betalingsservice mandate, a card agreement or a MobilePay agreement (rules C1, C3, R4)."""

    reference: str
    status: AgreementStatus
    cancelled_at: datetime | None  # UTC (rule M2); set exactly when cancelled


class InvoicedPeriod(TypedDict):
    """What one invoice of a subscription covers: dates (time-based, end exclusive) or issues."""

    start: date
    end: NotRequired[date]
    issues: NotRequired[int]
    invoice_id: NotRequired[UUID]


class SubscriptionPeriod(TypedDict):
    """Time-based (N days or months) or issue-based (N issues) (rule C2)."""

    unit: PeriodUnit
    length: int


class EntityDetails(TypedDict):
    """Everything the business entity says, as one PUT sends it (rules M4, M5, B5, M2, I4, I1)."""

    legal_name: str
    registration_number: str  # CVR
    postal_address: PostalAddress | None
    bank_account: BankAccount
    invoicing_method: InvoicingMethod
    payment_message_prefix: str
    currency: str
    time_zone: str
    reminder_schedule_days: list[int]
    fik_creditor_number: str


class CustomerDetails(TypedDict):
    """Everything a customer is, as one PUT sends it (rule C1)."""

    name: str
    email: str
    postal_address: PostalAddress
    ean: str | None
    bank_account: BankAccount | None
    betalingsservice_mandate: Agreement | None
    e_invoice_to_online_banking: bool
    card_agreement: Agreement | None
    mobilepay_agreement: Agreement | None


def is_active(agreement: Agreement | None) -> bool:
    """A cancelled agreement counts as no agreement at all (rules C3, R4)."""
    return agreement is not None and agreement["status"] == "active"


def check_reminder_schedule(days: list[int]) -> None:
    """Days after the due date, positive and strictly increasing, at most ten; none is allowed
    and means no reminders (rule I4)."""
    if len(days) > MAX_REMINDERS:
        raise DomainRuleViolated(f"reminder_schedule_days has {len(days)} reminders; at most "
                                 f"{MAX_REMINDERS} (rule I4)")
    if any(d < 1 for d in days) or any(b <= a for a, b in zip(days, days[1:], strict=False)):
        raise DomainRuleViolated(f"reminder_schedule_days must be positive and strictly increasing "
                                 f"days after the due date, e.g. [7, 14], not {days} (rule I4)")


def _check_entity(details: EntityDetails) -> None:
    if not is_invoicing_method(details["invoicing_method"]):
        raise DomainRuleViolated(f"invoicing_method {details['invoicing_method']!r} is not one of "
                                 "the invoicing methods of rule M5")
    if details["currency"] not in MINOR_UNITS:
        raise DomainRuleViolated(f"currency {details['currency']!r} is not an ISO 4217 currency (rule M1)")
    if not 1 <= len(details["payment_message_prefix"]) <= MAX_PREFIX:
        raise DomainRuleViolated(f"payment_message_prefix is 1 to {MAX_PREFIX} characters: it "
                                 "begins every payment message to the bank (rule B5)")
    creditor = details["fik_creditor_number"]
    if not (len(creditor) == 8 and creditor.isascii() and creditor.isdigit()):
        raise DomainRuleViolated("fik_creditor_number is the 8-digit FIK creditor number that "
                                 "every +71 payment reference ends with (rule I1)")
    account = details["bank_account"]
    if set(account) not in ({"iban", "bic"}, {"registration_number", "account_number"}):
        raise DomainRuleViolated("the business entity's bank_account is {iban, bic} or "
                                 "{registration_number, account_number} (rule M4)")
    check_reminder_schedule(details["reminder_schedule_days"])


class BusinessEntity(SaldoAggregate):
    """The legal entity behind a business unit: one per unit (rules M4, M5)."""

    @staticmethod
    def create_id(business_unit: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"saldo:business-entity:{business_unit}")

    @classmethod
    def register(cls, *, business_unit: str, details: EntityDetails) -> BusinessEntity:
        _check_entity(details)
        entity: BusinessEntity = cls(business_unit=business_unit, **details)
        return entity

    class Registered(SaldoAggregate.Created):
        legal_name: str
        registration_number: str
        postal_address: PostalAddress | None
        bank_account: BankAccount
        invoicing_method: InvoicingMethod
        payment_message_prefix: str
        currency: str
        time_zone: str
        reminder_schedule_days: list[int]
        fik_creditor_number: str

    @event(Registered)
    def __init__(self, *, business_unit: str, legal_name: str, registration_number: str,
                 postal_address: PostalAddress | None, bank_account: BankAccount,
                 invoicing_method: InvoicingMethod, payment_message_prefix: str, currency: str,
                 time_zone: str, reminder_schedule_days: list[int], fik_creditor_number: str) -> None:
        self.business_unit = business_unit
        self.details = EntityDetails(
            legal_name=legal_name, registration_number=registration_number,
            postal_address=postal_address, bank_account=bank_account,
            invoicing_method=invoicing_method, payment_message_prefix=payment_message_prefix,
            currency=currency, time_zone=time_zone, reminder_schedule_days=reminder_schedule_days,
            fik_creditor_number=fik_creditor_number)

    @property
    def currency(self) -> str:
        return self.details["currency"]

    @property
    def time_zone(self) -> str:
        return self.details["time_zone"]

    @property
    def invoicing_method(self) -> InvoicingMethod:
        return self.details["invoicing_method"]

    @property
    def reminder_schedule_days(self) -> list[int]:
        return self.details["reminder_schedule_days"]

    def revise(self, *, details: EntityDetails) -> bool:
        """Replace what the entity says; False, and no event, when nothing changes.

        The currency stays what it was: subscriptions are priced and invoices issued in it, and
        there is no rate to convert them by (rule M1).
        """
        _check_entity(details)
        if details["currency"] != self.currency:
            raise Conflict(f"the business entity's currency is {self.currency} and cannot change to "
                           f"{details['currency']}: its subscriptions and invoices are in "
                           f"{self.currency} (rule M1)")
        if details == self.details:
            return False
        self._updated(**details)
        return True

    class Updated(SaldoAggregate.Event):
        """The whole new state, not a diff: consumers keep snapshots."""

        legal_name: str
        registration_number: str
        postal_address: PostalAddress | None
        bank_account: BankAccount
        invoicing_method: InvoicingMethod
        payment_message_prefix: str
        currency: str
        time_zone: str
        reminder_schedule_days: list[int]
        fik_creditor_number: str

    @event(Updated)
    def _updated(self, *, legal_name: str, registration_number: str,
                 postal_address: PostalAddress | None, bank_account: BankAccount,
                 invoicing_method: InvoicingMethod, payment_message_prefix: str, currency: str,
                 time_zone: str, reminder_schedule_days: list[int], fik_creditor_number: str) -> None:
        self.details = EntityDetails(
            legal_name=legal_name, registration_number=registration_number,
            postal_address=postal_address, bank_account=bank_account,
            invoicing_method=invoicing_method, payment_message_prefix=payment_message_prefix,
            currency=currency, time_zone=time_zone, reminder_schedule_days=reminder_schedule_days,
            fik_creditor_number=fik_creditor_number)


AgreementName = Literal["betalingsservice_mandate", "card_agreement", "mobilepay_agreement"]


def _agreement(name: AgreementName, agreement: Agreement | None,
               before: CustomerDetails | None) -> Agreement | None:
    """The agreement to record, its cancellation instant in UTC (rule M2), once checked:
    cancelled_at is set exactly when it is cancelled, and a cancellation is final."""
    if agreement is None:
        return None
    cancelled_at = agreement["cancelled_at"]
    if (agreement["status"] == "cancelled") != (cancelled_at is not None):
        raise DomainRuleViolated(f"{name}: cancelled_at is set exactly when the status is cancelled")
    if cancelled_at is not None:
        if cancelled_at.tzinfo is None:
            raise DomainRuleViolated(f"{name}: cancelled_at needs a time zone (an instant, rule M2)")
        agreement = Agreement(reference=agreement["reference"], status="cancelled",
                              cancelled_at=cancelled_at.astimezone(UTC))
    earlier = before[name] if before else None
    if (earlier is not None and earlier["status"] == "cancelled"
            and agreement["reference"] == earlier["reference"] and agreement != earlier):
        # Refunds and channel resolution act on a cancellation (rules C3, R4): it is final.
        raise Conflict(f"{name} {earlier['reference']} was cancelled at {earlier['cancelled_at']}; "
                       "a cancelled agreement stays as it is, a new one needs its own reference")
    return agreement


def _customer_details(details: CustomerDetails, before: CustomerDetails | None) -> CustomerDetails:
    return CustomerDetails(
        name=details["name"], email=details["email"], postal_address=details["postal_address"],
        ean=details["ean"], bank_account=details["bank_account"],
        betalingsservice_mandate=_agreement(
            "betalingsservice_mandate", details["betalingsservice_mandate"], before),
        e_invoice_to_online_banking=details["e_invoice_to_online_banking"],
        card_agreement=_agreement("card_agreement", details["card_agreement"], before),
        mobilepay_agreement=_agreement("mobilepay_agreement", details["mobilepay_agreement"], before))


class Customer(SaldoAggregate):
    """A subscriber of one business unit, under the id the operator gave it (rule C1)."""

    @staticmethod
    def create_id(business_unit: str, customer_id: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"saldo:customer:{business_unit}:{customer_id}")

    @classmethod
    def register(cls, *, business_unit: str, customer_id: str, details: CustomerDetails) -> Customer:
        customer: Customer = cls(business_unit=business_unit, customer_id=customer_id,
                                 **_customer_details(details, None))
        return customer

    class Registered(SaldoAggregate.Created):
        customer_id: str
        name: str
        email: str
        postal_address: PostalAddress
        ean: str | None
        bank_account: BankAccount | None
        betalingsservice_mandate: Agreement | None
        e_invoice_to_online_banking: bool
        card_agreement: Agreement | None
        mobilepay_agreement: Agreement | None

    @event(Registered)
    def __init__(self, *, business_unit: str, customer_id: str, name: str, email: str,
                 postal_address: PostalAddress, ean: str | None, bank_account: BankAccount | None,
                 betalingsservice_mandate: Agreement | None, e_invoice_to_online_banking: bool,
                 card_agreement: Agreement | None, mobilepay_agreement: Agreement | None) -> None:
        self.business_unit = business_unit
        self.customer_id = customer_id
        self.details = CustomerDetails(
            name=name, email=email, postal_address=postal_address, ean=ean,
            bank_account=bank_account, betalingsservice_mandate=betalingsservice_mandate,
            e_invoice_to_online_banking=e_invoice_to_online_banking,
            card_agreement=card_agreement, mobilepay_agreement=mobilepay_agreement)

    @property
    def channel_facts(self) -> ChannelFacts:
        """What channel resolution needs to know of the customer now (rule C3)."""
        return ChannelFacts(
            ean=self.details["ean"],
            mandate_active=is_active(self.details["betalingsservice_mandate"]),
            e_invoice_to_online_banking=self.details["e_invoice_to_online_banking"],
            card_agreement_active=is_active(self.details["card_agreement"]),
        )

    def revise(self, *, details: CustomerDetails) -> bool:
        """Replace what the customer is; False, and no event, when nothing changes."""
        checked = _customer_details(details, self.details)
        if checked == self.details:
            return False
        self._updated(customer_id=self.customer_id, **checked)
        return True

    class Updated(SaldoAggregate.Event):
        """The whole new state, not a diff: payments and refunds keep snapshots (rule R4)."""

        customer_id: str
        name: str
        email: str
        postal_address: PostalAddress
        ean: str | None
        bank_account: BankAccount | None
        betalingsservice_mandate: Agreement | None
        e_invoice_to_online_banking: bool
        card_agreement: Agreement | None
        mobilepay_agreement: Agreement | None

    @event(Updated)
    def _updated(self, *, customer_id: str, name: str, email: str, postal_address: PostalAddress,
                 ean: str | None, bank_account: BankAccount | None,
                 betalingsservice_mandate: Agreement | None, e_invoice_to_online_banking: bool,
                 card_agreement: Agreement | None, mobilepay_agreement: Agreement | None) -> None:
        self.details = CustomerDetails(
            name=name, email=email, postal_address=postal_address, ean=ean,
            bank_account=bank_account, betalingsservice_mandate=betalingsservice_mandate,
            e_invoice_to_online_banking=e_invoice_to_online_banking,
            card_agreement=card_agreement, mobilepay_agreement=mobilepay_agreement)


class Subscription(SaldoAggregate):
    """One customer's subscription to one product, at a price per period (rule C2).

    It carries its own invoicing method or none (then the business entity's applies, C3), so
    one customer's two subscriptions may be invoiced in two ways. Invoicing its periods
    (renewals, rule I5) and stopping it (C4) build on `period` and `started_on`.
    """

    @classmethod
    def start(cls, *, entity: BusinessEntity, customer: Customer, product: str, price: Money,
              period: SubscriptionPeriod, invoicing_method: InvoicingMethod | None,
              started_on: date) -> Subscription:
        """Priced in the business entity's currency (rule M1), positive, for a whole number of
        days, months or issues (rule C2)."""
        if customer.business_unit != entity.business_unit:
            raise DomainRuleViolated("a subscription's customer belongs to its own business unit (M3)")
        if price.currency != entity.currency:
            raise DomainRuleViolated(f"price: {price} is not in the business unit's currency "
                                     f"{entity.currency} (rule M1)")
        if not price.is_positive:
            raise DomainRuleViolated(f"price: {price} per period is not positive")
        if period["unit"] not in ("days", "months", "issues") or period["length"] < 1:
            raise DomainRuleViolated("period is {unit: days, months or issues, length: 1 or more} "
                                     f"(rule C2), not {period}")
        if invoicing_method is not None and not is_invoicing_method(invoicing_method):
            raise DomainRuleViolated(f"invoicing_method {invoicing_method!r} is not one of the "
                                     "invoicing methods of rule M5")
        subscription: Subscription = cls(
            business_unit=entity.business_unit, customer_id=customer.customer_id, product=product,
            price=price, period=SubscriptionPeriod(unit=period["unit"], length=period["length"]),
            invoicing_method=invoicing_method, started_on=started_on)
        return subscription

    class Started(SaldoAggregate.Created):
        customer_id: str
        product: str
        price: Money
        period: SubscriptionPeriod
        invoicing_method: InvoicingMethod | None
        started_on: date

    @event(Started)
    def __init__(self, *, business_unit: str, customer_id: str, product: str, price: Money,
                 period: SubscriptionPeriod, invoicing_method: InvoicingMethod | None,
                 started_on: date) -> None:
        self.business_unit = business_unit
        self.customer_id = customer_id
        self.product = product
        self.price = price
        self.period = period
        self.invoicing_method = invoicing_method
        self.started_on = started_on
        self.stopped_on: date | None = None
        self.stop_reason: str | None = None
        self.invoiced: list[InvoicedPeriod] = []

    @property
    def issue_based(self) -> bool:
        return self.period["unit"] == "issues"

    # --- its periods and its stop (rules C4, I5) ---

    def next_period(self, *, today: date) -> InvoicedPeriod:
        """The period after the last one invoiced: dates for time-based periods (end exclusive),
        a number of issues from `today` for issue-based ones (rule C2)."""
        if self.stopped_on is not None:
            raise Conflict(f"the subscription stopped on {self.stopped_on}: it has no next period")
        unit, length = self.period["unit"], self.period["length"]
        if unit == "issues":
            return InvoicedPeriod(start=today, issues=length)
        # Counted from the start, not from the last end: monthly from 31 January ends on 28
        # February, then 31 March, 30 April — a clamped month does not shift the ones after it.
        start = self.invoiced[-1]["end"] if self.invoiced else self.started_on
        return InvoicedPeriod(start=start,
                              end=period_end(self.started_on, unit, length * (len(self.invoiced) + 1)))

    class PeriodInvoiced(SaldoAggregate.Event):
        invoice_id: UUID
        period: InvoicedPeriod
        customer_id: str

    def period_invoiced(self, *, invoice_id: UUID, period: InvoicedPeriod) -> None:
        self._period_invoiced(invoice_id=invoice_id, period=period, customer_id=self.customer_id)

    @event(PeriodInvoiced)
    def _period_invoiced(self, *, invoice_id: UUID, period: InvoicedPeriod, customer_id: str) -> None:
        self.invoiced.append(InvoicedPeriod(**period, invoice_id=invoice_id))

    def unused(self, *, stop_date: date, issues_delivered: int | None) -> tuple[int, int]:
        """(unused, of) of the last invoiced period when stopping on `stop_date`: days for
        time-based periods, issues not yet delivered for issue-based ones (rule C4)."""
        last = self.invoiced[-1]
        if self.issue_based:
            issues = last["issues"]
            if issues_delivered is None or not 0 <= issues_delivered <= issues:
                raise DomainRuleViolated(f"issues_delivered: the period has {issues} issues; say how many "
                                         f"of them were delivered (0 to {issues}) (rule C4)")
            return issues - issues_delivered, issues
        days = days_in_period(last["start"], last["end"])
        if stop_date >= last["end"]:
            return 0, days  # stopped after the period: all of it was served
        return days_unused(last["start"], last["end"], stop_date), days

    def stop(self, *, stop_date: date, reason: str) -> None:
        """Stops from `stop_date`, the first day not served (rule C4); once."""
        if self.stopped_on is not None:
            raise Conflict(f"the subscription already stopped on {self.stopped_on}")
        if stop_date < self.started_on:
            raise DomainRuleViolated(f"stop_date: {stop_date} is before the subscription started on "
                                     f"{self.started_on} (rule C4)")
        self._stopped(stopped_on=stop_date, reason=reason, customer_id=self.customer_id)

    class Stopped(SaldoAggregate.Event):
        stopped_on: date
        reason: str
        customer_id: str

    @event(Stopped)
    def _stopped(self, *, stopped_on: date, reason: str, customer_id: str) -> None:
        self.stopped_on = stopped_on
        self.stop_reason = reason
