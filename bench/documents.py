"""Document render rates: invoice PDFs and Peppol UBL documents per second, in process.

One typical invoice (a Danish subscriber, two lines, FIK payment line, bank account) is
rendered again and again on one core; the first rendering of each kind (fonts, schema
loading) happens before the clock starts. Danish text fits the PDF core fonts, so the typical
PDF embeds no font; the rate with the embedded Unicode font (DejaVu, used when a name needs
it) is measured too. `render_rates(seconds)` spends `seconds` in all, split evenly between
the four measurements. Run alone with
`python -m bench.documents [seconds]`; it prints the rates as JSON on stdout.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import date

from bench.progress import say
from saldo_invoicing.documents import (
    Document,
    DocumentLine,
    Party,
    SellerAccount,
    render_pdf,
    render_ubl,
    validate_ubl,
)
from saldo_invoicing.domain.fik import fik_reference
from saldo_kernel.money import Money


def typical_invoice() -> Document:
    """What most of Saldo's invoices look like: one subscription period and one add-on."""
    lines = (
        DocumentLine(description="Dagbladet, abonnement 1.-31. marts 2026", amount=Money(49900, "DKK")),
        DocumentLine(description="Weekendtillæg", quantity=4, amount=Money(10000, "DKK")),
    )
    return Document(
        kind="invoice", number="100234", issue_date=date(2026, 3, 1), due_date=date(2026, 3, 15),
        seller=Party(name="Nordlys Medier A/S", address_lines=("Åboulevarden 12",), postal_code="8000",
                     city="Aarhus C", country="DK", registration_number="32554361",
                     email="abonnement@nordlys.dk"),
        seller_account=SellerAccount.danish("1234", "0001234567"),
        buyer=Party(name="Søren Kjærgård", address_lines=("Østergade 7, 2. tv",), postal_code="2100",
                    city="København Ø", country="DK", ean="5790000123452"),
        lines=lines, total=Money(59900, "DKK"), buyer_reference="100234",
        payment_reference=fik_reference(100234, "85123456"), payment_message="Nordlys 100234",
    )


def _rate(what: str, seconds: float, render: Callable[[], object]) -> float:
    """Renderings per second of `render`, run for about `seconds`, with a progress line."""
    render()  # warm-up: fonts, schema, caches
    done, started = 0, time.perf_counter()
    deadline, next_report = started + seconds, started + 1.0
    while (now := time.perf_counter()) < deadline:
        render()
        done += 1
        if now >= next_report:
            next_report = now + 1.0
            print(f"\r  {what}: {done} in {now - started:4.1f} s", end="", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - started
    rate = done / elapsed if elapsed > 0 else 0.0
    print(f"\r  {what}: {done} in {elapsed:4.1f} s = {rate:,.0f}/s", file=sys.stderr, flush=True)
    return rate


def render_rates(seconds: float) -> dict[str, float]:
    """PDFs/s (core fonts, and with the embedded Unicode font), UBL documents/s, and UBL
    documents rendered and schema-validated per second."""
    document = typical_invoice()
    share = seconds / 4
    say(f"document render rates, {share:.1f} s each")
    return {
        "pdf_per_second": _rate("invoice PDFs", share, lambda: render_pdf(document)),
        "pdf_unicode_font_per_second": _rate(
            "invoice PDFs, DejaVu embedded", share, lambda: render_pdf(document, fonts="unicode")),
        "ubl_per_second": _rate("UBL invoices", share, lambda: render_ubl(document)),
        "ubl_validated_per_second": _rate(
            "UBL invoices, validated", share, lambda: validate_ubl(render_ubl(document))),
    }


if __name__ == "__main__":
    print(json.dumps(render_rates(float(sys.argv[1]) if len(sys.argv) > 1 else 6.0), indent=2))
