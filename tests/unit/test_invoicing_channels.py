"""Channel resolution (rule C3) over the invoicing methods of rule M5: every branch, in order."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from saldo_invoicing.domain.channels import (
    CHANNELS,
    INVOICING_METHODS,
    Channel,
    ChannelFacts,
    InvoicingMethod,
    ResolvedChannel,
    is_invoicing_method,
    resolve_channel,
)

EAN = "5790000123456"


def facts(
    *, ean: str | None = None, mandate: bool = False, online_banking: bool = False, card: bool = False
) -> ChannelFacts:
    return ChannelFacts(
        ean=ean, mandate_active=mandate, e_invoice_to_online_banking=online_banking,
        card_agreement_active=card,
    )


NOTHING = facts()
EVERYTHING = facts(mandate=True, online_banking=True, card=True)

# facts, subscription's method, unit's method -> channel, a fragment of the reason
TABLE: list[tuple[str, ChannelFacts, InvoicingMethod | None, InvoicingMethod, Channel, str]] = [
    # 1. EAN overrides everything
    ("ean_over_email", facts(ean=EAN), "email", "manual", "e_invoice",
     f"EAN {EAN}: e-invoice via NemHandel/Peppol"),
    ("ean_over_mandate", facts(ean=EAN, mandate=True), "bs_payment_slip", "email", "e_invoice", "EAN"),
    ("ean_over_card", facts(ean=EAN, card=True), None, "email", "e_invoice", "EAN"),
    # 2./3. bs_payment_slip: mandate, then online banking, then paper
    ("bs_mandate", facts(mandate=True, online_banking=True, card=True), "bs_payment_slip", "email",
     "automatic_withdrawal", "subscription's own method bs_payment_slip, active Betalingsservice mandate: "
     "collected automatically, no separate invoice"),
    ("bs_online_banking", facts(online_banking=True, card=True), "bs_payment_slip", "email",
     "online_banking_e_invoice", "no active Betalingsservice mandate, the customer receives e-invoices"),
    ("bs_paper", facts(card=True), "bs_payment_slip", "email", "paper_slip", "payment slip by post"),
    ("bs_from_unit_paper", NOTHING, None, "bs_payment_slip", "paper_slip",
     "business unit's method bs_payment_slip (the subscription has none of its own)"),
    # 4. card agreement with email / print_your_own_slip
    ("email_card", facts(card=True), "email", "manual", "card_charge",
     "active card agreement: the card is charged and only a receipt is sent"),
    ("print_card", facts(card=True), None, "print_your_own_slip", "card_charge", "active card agreement"),
    # 5.-8. the method as it is
    ("email", facts(mandate=True, online_banking=True), "email", "bs_payment_slip", "email",
     "subscription's own method email: e-mail with a PDF and a payment link"),
    ("print", NOTHING, "print_your_own_slip", "email", "print_your_own_slip", "print and pay themselves"),
    ("postponed", EVERYTHING, "preliminary_postponed", "email", "postponed",
     "postponed, nothing is sent now"),
    ("postponed_from_unit", NOTHING, None, "preliminary_postponed", "postponed",
     "business unit's method preliminary_postponed"),
    ("manual", EVERYTHING, None, "manual", "manual", "business unit's method manual"),
]


@pytest.mark.parametrize(
    ("customer", "subscription_method", "unit_method", "channel", "reason"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_C3_channel_table(
    customer: ChannelFacts,
    subscription_method: InvoicingMethod | None,
    unit_method: InvoicingMethod,
    channel: Channel,
    reason: str,
) -> None:
    """C3: each row is one branch of the resolution order; the reason says which fact decided."""
    resolved = resolve_channel(
        customer=customer, subscription_method=subscription_method, unit_method=unit_method
    )
    assert resolved.channel == channel
    assert reason in resolved.reason


def test_C3_the_table_reaches_every_channel() -> None:
    assert {row[4] for row in TABLE} == set(CHANNELS)


@pytest.mark.parametrize(
    ("mandate", "online_banking", "card"), list(itertools.product([False, True], repeat=3))
)
@pytest.mark.parametrize("subscription_method", [None, *INVOICING_METHODS])
@pytest.mark.parametrize("unit_method", INVOICING_METHODS)
def test_C3_an_ean_overrides_every_method_mandate_and_card_agreement(
    mandate: bool, online_banking: bool, card: bool,
    subscription_method: InvoicingMethod | None, unit_method: InvoicingMethod,
) -> None:
    customer = facts(ean=EAN, mandate=mandate, online_banking=online_banking, card=card)
    resolved = resolve_channel(
        customer=customer, subscription_method=subscription_method, unit_method=unit_method
    )
    assert resolved == ResolvedChannel(
        "e_invoice",
        f"the customer has EAN {EAN}: e-invoice via NemHandel/Peppol, which overrides every invoicing method",
    )


@pytest.mark.parametrize(("subscription_method", "unit_method"), [
    (s, u) for s, u in itertools.product(INVOICING_METHODS, INVOICING_METHODS) if s != u
])
def test_C3_the_subscriptions_own_method_beats_the_units(
    subscription_method: InvoicingMethod, unit_method: InvoicingMethod
) -> None:
    """C2/C3: one customer's subscriptions may be invoiced in different ways."""
    own = resolve_channel(customer=NOTHING, subscription_method=subscription_method, unit_method=unit_method)
    as_if_unit = resolve_channel(customer=NOTHING, subscription_method=None, unit_method=subscription_method)
    assert own.channel == as_if_unit.channel
    assert f"subscription's own method {subscription_method}" in own.reason
    assert unit_method not in own.reason.split(":")[0].replace(subscription_method, "")


def test_C3_a_cancelled_mandate_or_card_agreement_counts_as_absent() -> None:
    """The caller passes a cancelled agreement as not active; it then weighs nothing."""
    cancelled = facts(mandate=False, card=False)
    def channel(method: InvoicingMethod | None) -> Channel:
        return resolve_channel(customer=cancelled, subscription_method=method, unit_method="email").channel

    assert channel("bs_payment_slip") == "paper_slip"
    assert channel(None) == "email"
    assert channel("print_your_own_slip") == "print_your_own_slip"


@pytest.mark.parametrize("method", ["bs_payment_slip", "preliminary_postponed", "manual"])
def test_C3_a_card_agreement_only_matters_for_email_and_print_your_own_slip(method: InvoicingMethod) -> None:
    with_card = resolve_channel(customer=facts(card=True), subscription_method=method, unit_method="email")
    without = resolve_channel(customer=NOTHING, subscription_method=method, unit_method="email")
    assert with_card == without and with_card.channel != "card_charge"


def test_C3_online_banking_only_matters_for_bs_payment_slip() -> None:
    assert resolve_channel(
        customer=facts(online_banking=True), subscription_method=None, unit_method="email"
    ).channel == "email"


def test_M5_the_five_invoicing_methods() -> None:
    assert INVOICING_METHODS == (
        "email", "bs_payment_slip", "print_your_own_slip", "preliminary_postponed", "manual"
    )
    assert all(is_invoicing_method(m) for m in INVOICING_METHODS)
    assert not any(is_invoicing_method(v) for v in ("fax", None, "EMAIL", ""))


def test_M5_an_unknown_method_is_refused() -> None:
    fax: Any = "fax"  # as if read unchecked from outside
    with pytest.raises(ValueError, match="'fax' is not an invoicing method"):
        resolve_channel(customer=NOTHING, subscription_method=None, unit_method=fax)
    with pytest.raises(ValueError, match="subscription_method"):
        resolve_channel(customer=NOTHING, subscription_method=fax, unit_method="email")


def test_C3_every_reason_is_one_sentence() -> None:
    for customer in (NOTHING, EVERYTHING, facts(ean=EAN), facts(online_banking=True), facts(card=True)):
        for sub, unit in itertools.product([None, *INVOICING_METHODS], INVOICING_METHODS):
            reason = resolve_channel(customer=customer, subscription_method=sub, unit_method=unit).reason
            assert reason and "\n" not in reason and ". " not in reason


def test_C3_an_invoice_without_a_subscription_says_so_in_its_reason() -> None:
    customer = facts(ean=None, mandate=False, online_banking=False, card=False)
    own_lines = resolve_channel(customer=customer, subscription_method=None, unit_method="email",
                                for_subscription=False)
    assert own_lines == ResolvedChannel("email", own_lines.reason)
    assert "business unit's method email (no subscription)" in own_lines.reason
    assert "subscription has none" not in own_lines.reason
