"""How an invoice reaches the customer (rule C3), from the invoicing methods of rule M5.

One pure function, `resolve_channel`, decides the channel and says why in one sentence an
operator understands; the invoice records both at issue, so a later change to the customer
or the subscription never rewrites how an issued invoice was delivered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeGuard, assert_never, get_args

# Rule M5: the methods a business unit (or one subscription, C2) can prefer.
InvoicingMethod = Literal[
    "email", "bs_payment_slip", "print_your_own_slip", "preliminary_postponed", "manual"
]
INVOICING_METHODS: tuple[InvoicingMethod, ...] = get_args(InvoicingMethod)

# Rule C3: where the invoice actually goes once the customer's facts are taken into account.
Channel = Literal[
    "e_invoice",  # NemHandel, OIOUBL/Peppol UBL to the customer's EAN
    "automatic_withdrawal",  # Betalingsservice collects it; no separate invoice
    "online_banking_e_invoice",  # shown in the customer's online bank
    "paper_slip",  # a payment slip by post
    "card_charge",  # the recurring card agreement is charged; only a receipt is sent
    "email",  # e-mail with a PDF and a payment link
    "print_your_own_slip",
    "postponed",  # preliminary invoicing: nothing is sent now
    "manual",
]
CHANNELS: tuple[Channel, ...] = get_args(Channel)


def is_invoicing_method(value: object) -> TypeGuard[InvoicingMethod]:
    """True if `value` is one of the five invoicing methods of rule M5."""
    return isinstance(value, str) and value in INVOICING_METHODS


@dataclass(frozen=True, slots=True)
class ChannelFacts:
    """What rule C3 needs to know about the customer, as of the moment the invoice is issued.

    Only *active* agreements count. The caller decides what "active" means from the customer's
    agreement (status "active"; a cancelled mandate or card agreement is passed as False), so a
    cancelled agreement is treated exactly like one that never existed.
    `ean` is the customer's 13-digit EAN (already validated when the customer was saved) or None.
    """

    ean: str | None
    mandate_active: bool
    e_invoice_to_online_banking: bool
    card_agreement_active: bool


@dataclass(frozen=True, slots=True)
class ResolvedChannel:
    channel: Channel
    reason: str  # one sentence for the operator: which method applied and which fact decided


def resolve_channel(
    *, customer: ChannelFacts, subscription_method: InvoicingMethod | None, unit_method: InvoicingMethod,
    for_subscription: bool = True,
) -> ResolvedChannel:
    """The delivery channel of an invoice, in the order of rule C3.

    1. An EAN on the customer overrides everything: e-invoice via NemHandel/Peppol.
    2. Otherwise the method is the subscription's own, else the business unit's preferred one.
    3. bs_payment_slip: an active Betalingsservice mandate → automatic withdrawal (no separate
       invoice); else e-invoice to online banking if the customer enabled it; else a paper slip.
    4. email or print_your_own_slip with an active card agreement → charge the card, send a receipt.
    5. email → e-mail with a PDF and a payment link. 6. print_your_own_slip. 7. preliminary_postponed
       → postponed. 8. manual.

    `for_subscription` is False for an invoice of the operator's own lines, which has no
    subscription to take a method from (the reason says so).
    """
    for name, value in (("subscription_method", subscription_method), ("unit_method", unit_method)):
        if value is not None and not is_invoicing_method(value):
            raise ValueError(
                f"{name} {value!r} is not an invoicing method (rule M5): {', '.join(INVOICING_METHODS)}"
            )

    if customer.ean is not None:
        return ResolvedChannel(
            "e_invoice",
            f"the customer has EAN {customer.ean}: e-invoice via NemHandel/Peppol, "
            "which overrides every invoicing method",
        )

    if subscription_method is not None:
        method: InvoicingMethod = subscription_method
        source = f"subscription's own method {method}"
    else:
        method = unit_method
        source = (f"business unit's method {method} (the subscription has none of its own)"
                  if for_subscription else f"business unit's method {method} (no subscription)")

    if method == "bs_payment_slip":
        if customer.mandate_active:
            return ResolvedChannel(
                "automatic_withdrawal",
                f"{source}, active Betalingsservice mandate: collected automatically, no separate invoice",
            )
        if customer.e_invoice_to_online_banking:
            return ResolvedChannel(
                "online_banking_e_invoice",
                f"{source}, no active Betalingsservice mandate, the customer receives e-invoices "
                "in online banking: e-invoice to online banking",
            )
        return ResolvedChannel(
            "paper_slip",
            f"{source}, no active Betalingsservice mandate and no e-invoice to online banking: "
            "payment slip by post",
        )
    if method in ("email", "print_your_own_slip") and customer.card_agreement_active:
        return ResolvedChannel(
            "card_charge",
            f"{source}, active card agreement: the card is charged and only a receipt is sent",
        )
    if method == "email":
        return ResolvedChannel("email", f"{source}: e-mail with a PDF and a payment link")
    if method == "print_your_own_slip":
        return ResolvedChannel(
            "print_your_own_slip", f"{source}: the customer gets a payment slip to print and pay themselves"
        )
    if method == "preliminary_postponed":
        return ResolvedChannel("postponed", f"{source}: invoicing is postponed, nothing is sent now")
    if method == "manual":
        return ResolvedChannel("manual", f"{source}: the operator delivers it manually, nothing is sent")
    assert_never(method)
