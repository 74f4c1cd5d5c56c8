"""Invoice and credit-note documents: the PDF a person reads and the Peppol BIS Billing 3.0
UBL 2.1 XML an EAN customer's system reads (issue 7, "Documents"; rules I1 for the FIK line,
M1/M6 for amounts in integer minor units of one currency).

UBL documents are validated against the official UBL 2.1 schemas shipped in the package,
offline; the BIS 3 rules the renderer implements are checked one by one with XPath, each
test named after its EN 16931 (BR-*), Peppol (PEPPOL-*) or Danish (DK-R-*) rule id. The PDF is
checked through its own content (text decoded with the embedded fonts' ToUnicode maps) and,
where poppler's `pdftoppm` is installed, as a picture.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import socket
import subprocess
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from saldo_invoicing.documents import (
    Document,
    DocumentLine,
    InvalidUblDocument,
    Party,
    SellerAccount,
    render_pdf,
    render_ubl,
    validate_ubl,
)
from saldo_invoicing.documents import pdf as pdf_module
from saldo_invoicing.documents import ubl as ubl_module
from saldo_invoicing.domain.fik import fik_reference
from saldo_kernel.money import Money

NS = {
    "inv": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "cn": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
BUYER_EAN = "5790000123452"  # a valid GS1 check digit
CVR = "32554361"
CREDITOR = "85123456"

SELLER = Party(
    name="Nordlys Abonnement ApS", address_lines=("Åboulevarden 12, 2. sal",), postal_code="8000",
    city="Aarhus C", country="DK", registration_number=CVR, email="faktura@nordlys.dk",
)
BUYER = Party(
    name="Søren Kjærgård Ærø", address_lines=("Østergade 7", "c/o Bøgeskov"), postal_code="2100",
    city="København Ø", country="DK", ean=BUYER_EAN, email="soren@example.dk",
)
DANISH_ACCOUNT = SellerAccount.danish("1234", "0001234567")
IBAN_ACCOUNT = SellerAccount.international("DK5000400440116243", "DABADKKK")


def dkk(minor_units: int) -> Money:
    return Money(minor_units, "DKK")


def invoice(**changes: Any) -> Document:
    lines = changes.pop("lines", (
        DocumentLine(description="Avis, marts 2026 (papir + digital)", amount=dkk(49900)),
        DocumentLine(description="Weekendtillæg", quantity=4, amount=dkk(10000)),
    ))
    fields: dict[str, Any] = {
        "kind": "invoice", "number": "1234", "issue_date": date(2026, 3, 1), "due_date": date(2026, 3, 15),
        "seller": SELLER, "seller_account": DANISH_ACCOUNT, "buyer": BUYER, "lines": lines,
        "total": Money(sum(line.amount.minor_units for line in lines),
                       lines[0].amount.currency if lines else "DKK"),
        "buyer_reference": "K-10042", "payment_reference": fik_reference(1234, CREDITOR),
        "payment_message": "Nordlys 1234", "note": "Tak for dit abonnement.",
    }
    fields.update(changes)
    return Document(**fields)


def credit_note(**changes: Any) -> Document:
    fields: dict[str, Any] = {
        "kind": "credit_note", "number": "CN-77", "due_date": None, "payment_reference": None,
        "credited_invoice_number": "1234", "payment_message": None,
        "lines": (DocumentLine(description="Ubrugt del af marts (17 af 31 dage)", amount=dkk(27365)),),
    }
    fields.update(changes)
    return invoice(**fields)


def in_currency(currency: str, *amounts: int) -> Document:
    lines = tuple(DocumentLine(description=f"Line {i}", amount=Money(amount, currency))
                  for i, amount in enumerate(amounts))
    return invoice(lines=lines)


def parsed(document: Document) -> etree._Element:
    xml = render_ubl(document)
    validate_ubl(xml)  # every rendered document must pass the UBL 2.1 schema
    return etree.fromstring(xml)


def one(tree: etree._Element, path: str) -> str:
    found = tree.xpath(path, namespaces=NS)
    assert isinstance(found, list) and len(found) == 1, f"{path}: {found!r}"
    value = found[0]
    return value if isinstance(value, str) else str(value.text)


def decimal(tree: etree._Element, path: str) -> Decimal:
    return Decimal(one(tree, path))


# ------------------------------------------------------------------------------------ model


@pytest.mark.parametrize(("change", "message"), [
    ({"lines": ()}, "BR-16"),
    ({"total": dkk(1)}, "BR-CO-10"),
    ({"due_date": None}, "BR-CO-25"),
    ({"due_date": date(2026, 2, 1)}, "before issue date"),
    ({"credited_invoice_number": "1"}, "only a credit note"),
    ({"payment_reference": "+71000000000012345+85123456"}, "check digit"),
    ({"number": " "}, "document number"),
    ({"kind": "receipt"}, "invoice or a credit_note"),
])
def test_a_document_that_breaks_a_rule_is_refused_naming_it(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        invoice(**change)


def test_M1_every_line_is_in_the_documents_currency() -> None:
    lines = (DocumentLine(description="a", amount=dkk(100)),
             DocumentLine(description="b", amount=Money(100, "EUR")))
    with pytest.raises(ValueError, match="rule M1"):
        invoice(lines=lines, total=dkk(200))


def test_a_credit_note_names_its_invoice_and_carries_no_FIK() -> None:
    with pytest.raises(ValueError, match="names the invoice it credits"):
        credit_note(credited_invoice_number=None)
    with pytest.raises(ValueError, match="no FIK"):
        credit_note(payment_reference=fik_reference(1234, CREDITOR))


@pytest.mark.parametrize(("factory", "message"), [
    (lambda: dataclasses.replace(BUYER, ean="5790000123453"), "GS1 check digit"),
    (lambda: dataclasses.replace(BUYER, country="Denmark"), "ISO 3166-1"),
    (lambda: dataclasses.replace(BUYER, registration_number="1234"), "CVR"),
    (lambda: dataclasses.replace(BUYER, address_lines=("1", "2", "3", "4", "5")), "at most 4"),
    (lambda: SellerAccount(iban="DK5000400440116243"), "BIC"),
    (lambda: SellerAccount(iban="DK50", bic="DABADKKK", registration_number="1234"), "either"),
    (lambda: SellerAccount.danish("12", "1"), "4 digits"),
    (lambda: DocumentLine(description="x", amount=dkk(0)), "positive"),
    (lambda: DocumentLine(description="x", quantity=0, amount=dkk(1)), "quantity"),
])
def test_parties_accounts_and_lines_are_checked(factory: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        factory()


# -------------------------------------------------------------------------- UBL: the schema

EVERY_KIND = {
    "invoice_fik": invoice(),
    "invoice_iban": invoice(payment_reference=None, seller_account=IBAN_ACCOUNT),
    "invoice_danish_account": invoice(payment_reference=None),
    "invoice_no_payment_means": invoice(payment_reference=None, seller_account=None, note=None),
    "invoice_eur": in_currency("EUR", 49900, 1),
    "invoice_jpy": in_currency("JPY", 500, 7),
    "invoice_uneven_unit_price": invoice(
        lines=(DocumentLine(description="3 numre", quantity=3, amount=dkk(10000)),)),
    "invoice_four_address_lines": invoice(buyer=dataclasses.replace(
        BUYER, address_lines=("Østergade 7", "2. tv", "c/o Bøgeskov", "Postboks 12"))),
    "invoice_foreign_buyer_with_cvr_only": invoice(buyer=dataclasses.replace(
        BUYER, ean=None, registration_number="12345674")),
    "credit_note": credit_note(),
    "credit_note_eur": credit_note(lines=(DocumentLine(description="Refund", amount=Money(1999, "EUR")),)),
    "many_lines": invoice(lines=tuple(
        DocumentLine(description=f"Nr. {i}", amount=dkk(100 + i)) for i in range(40))),
}


@pytest.mark.parametrize("name", sorted(EVERY_KIND))
def test_every_rendered_invoice_and_credit_note_validates_against_the_UBL_2_1_schema(name: str) -> None:
    document = EVERY_KIND[name]
    tree = parsed(document)  # validates
    root = "CreditNote" if document.is_credit_note else "Invoice"
    assert etree.QName(tree).localname == root


def test_a_document_missing_its_ID_does_not_validate() -> None:
    """The schema can fail: cbc:ID (BT-1) is mandatory in UBL 2.1."""
    tree = etree.fromstring(render_ubl(invoice()))
    identifier = tree.find("cbc:ID", NS)
    assert identifier is not None
    tree.remove(identifier)
    with pytest.raises(InvalidUblDocument, match="ID") as failure:
        validate_ubl(etree.tostring(tree))
    assert failure.value.errors and all(error.startswith("line ") for error in failure.value.errors)


def test_elements_out_of_order_or_unknown_do_not_validate() -> None:
    tree = etree.fromstring(render_ubl(credit_note()))
    etree.SubElement(tree, f"{{{NS['cbc']}}}DueDate").text = "2026-03-15"  # CreditNote has none
    with pytest.raises(InvalidUblDocument):
        validate_ubl(etree.tostring(tree))


@pytest.mark.parametrize(("xml", "message"), [
    (b"<Invoice", "not well-formed"),
    (b"<Order xmlns='urn:oasis:names:specification:ubl:schema:xsd:Order-2'/>", "not a UBL 2.1 Invoice"),
])
def test_what_is_not_an_invoice_or_credit_note_is_refused(xml: bytes, message: str) -> None:
    with pytest.raises(InvalidUblDocument, match=message):
        validate_ubl(xml)


def test_the_schemas_load_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline: every import resolves to a shipped file; any socket use fails the test."""
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the UBL schemas tried to use the network")

    monkeypatch.setattr(socket, "socket", no_network)
    ubl_module.ubl_schema.cache_clear()
    try:
        validate_ubl(render_ubl(invoice()))
    finally:
        ubl_module.ubl_schema.cache_clear()


def test_the_shipped_schema_files_carry_their_notice() -> None:
    schema = ubl_module.SCHEMA_DIR
    notice = (schema / "NOTICE.md").read_text()
    shipped = sorted(p.relative_to(schema).as_posix() for p in schema.rglob("*.xsd"))
    assert "saldo-ubl-2.1.xsd" in shipped
    for name in shipped:
        if name != "saldo-ubl-2.1.xsd":
            assert f"`{name}`" in notice, f"{name} is shipped but NOTICE.md does not list it"
    assert "Copyright (C) OASIS Open" in notice and (schema / "LICENSE-Apache-2.0.txt").is_file()
    for path in (schema / "ubl-2.1").rglob("*.xsd"):
        assert "Copyright (C) OASIS Open" in path.read_text(), f"{path.name} lost its OASIS notice"


# --------------------------------------------------------------------- UBL: BIS 3 rules


def test_BR_01_specification_identifier_and_PEPPOL_EN16931_R001_business_process() -> None:
    tree = parsed(invoice())
    assert one(tree, "cbc:CustomizationID") == (
        "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0")
    assert one(tree, "cbc:ProfileID") == "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"


def test_BR_02_BR_03_BR_04_number_issue_date_and_type_code() -> None:
    tree = parsed(invoice())
    assert one(tree, "cbc:ID") == "1234"
    assert one(tree, "cbc:IssueDate") == "2026-03-01"
    assert one(tree, "cbc:InvoiceTypeCode") == "380"
    note = parsed(credit_note())
    assert one(note, "cbc:ID") == "CN-77"
    assert one(note, "cbc:CreditNoteTypeCode") == "381"


def test_BR_CO_25_an_invoice_states_its_due_date() -> None:
    assert one(parsed(invoice()), "cbc:DueDate") == "2026-03-15"


def test_BR_05_currency_and_every_amount_carries_it() -> None:
    tree = parsed(in_currency("EUR", 49900))
    assert one(tree, "cbc:DocumentCurrencyCode") == "EUR"
    amounts = tree.xpath("//*[@currencyID]", namespaces=NS)
    assert isinstance(amounts, list) and amounts
    assert {element.get("currencyID") for element in amounts} == {"EUR"}


def test_BR_06_BR_07_seller_and_buyer_names() -> None:
    tree = parsed(invoice())
    supplier, customer = "cac:AccountingSupplierParty/cac:Party", "cac:AccountingCustomerParty/cac:Party"
    assert one(tree, f"{supplier}/cac:PartyLegalEntity/cbc:RegistrationName") == "Nordlys Abonnement ApS"
    assert one(tree, f"{customer}/cac:PartyLegalEntity/cbc:RegistrationName") == "Søren Kjærgård Ærø"


def test_BR_08_to_BR_11_postal_addresses_with_country_codes() -> None:
    tree = parsed(invoice())
    seller = "cac:AccountingSupplierParty/cac:Party/cac:PostalAddress"
    buyer = "cac:AccountingCustomerParty/cac:Party/cac:PostalAddress"
    assert one(tree, f"{seller}/cbc:StreetName") == "Åboulevarden 12, 2. sal"
    assert one(tree, f"{seller}/cac:Country/cbc:IdentificationCode") == "DK"
    assert one(tree, f"{buyer}/cbc:StreetName") == "Østergade 7"
    assert one(tree, f"{buyer}/cbc:AdditionalStreetName") == "c/o Bøgeskov"
    assert one(tree, f"{buyer}/cbc:CityName") == "København Ø"
    assert one(tree, f"{buyer}/cbc:PostalZone") == "2100"
    assert one(tree, f"{buyer}/cac:Country/cbc:IdentificationCode") == "DK"


def test_BT_162_a_third_and_fourth_address_line_share_the_one_extra_line() -> None:
    tree = parsed(EVERY_KIND["invoice_four_address_lines"])
    assert one(tree, "cac:AccountingCustomerParty/cac:Party/cac:PostalAddress/cac:AddressLine/cbc:Line") == (
        "c/o Bøgeskov, Postboks 12")


def test_BR_16_at_least_one_line_and_BR_21_to_BR_26_each_line_complete() -> None:
    tree = parsed(invoice())
    lines = tree.xpath("cac:InvoiceLine", namespaces=NS)
    assert isinstance(lines, list) and len(lines) == 2
    for number, line in enumerate(lines, start=1):
        assert one(line, "cbc:ID") == str(number)  # BR-21
        assert one(line, "cbc:InvoicedQuantity/@unitCode") == "EA"  # BR-22, BR-23
        assert one(line, "cac:Item/cbc:Name")  # BR-25
        assert decimal(line, "cac:Price/cbc:PriceAmount") >= 0  # BR-26, BR-27
    note = parsed(credit_note())
    assert one(note, "cac:CreditNoteLine/cbc:CreditedQuantity") == "1"


def test_BR_CO_10_the_sum_of_line_amounts_is_the_line_extension_amount() -> None:
    tree = parsed(EVERY_KIND["many_lines"])
    lines = tree.xpath("cac:InvoiceLine/cbc:LineExtensionAmount/text()", namespaces=NS)
    assert isinstance(lines, list)
    total = sum(Decimal(str(amount)) for amount in lines)
    assert total == decimal(tree, "cac:LegalMonetaryTotal/cbc:LineExtensionAmount") == Decimal("47.80")


def test_BR_CO_13_to_BR_CO_16_totals_add_up() -> None:
    for document in (invoice(), credit_note(), in_currency("JPY", 500, 7)):
        tree = parsed(document)
        legal = "cac:LegalMonetaryTotal"
        tax = decimal(tree, "cac:TaxTotal/cbc:TaxAmount")
        assert decimal(tree, f"{legal}/cbc:TaxExclusiveAmount") == (
            decimal(tree, f"{legal}/cbc:LineExtensionAmount"))  # BR-CO-13
        assert decimal(tree, f"{legal}/cbc:TaxInclusiveAmount") == (
            decimal(tree, f"{legal}/cbc:TaxExclusiveAmount") + tax)  # BR-CO-15
        assert decimal(tree, f"{legal}/cbc:PayableAmount") == decimal(tree, f"{legal}/cbc:TaxInclusiveAmount")
        subtotals = tree.xpath("cac:TaxTotal/cac:TaxSubtotal/cbc:TaxAmount/text()", namespaces=NS)
        assert isinstance(subtotals, list) and subtotals  # BR-CO-18
        assert tax == sum(Decimal(str(amount)) for amount in subtotals)  # BR-CO-14


def test_BR_E_exempt_category_zero_percent_with_a_reason_and_the_sellers_tax_registration() -> None:
    """Saldo has no VAT yet: every line is category E (the ubl module's known limit)."""
    tree = parsed(invoice())
    categories = tree.xpath("//cac:ClassifiedTaxCategory/cbc:ID/text() | //cac:TaxCategory/cbc:ID/text()",
                            namespaces=NS)
    assert isinstance(categories, list) and set(map(str, categories)) == {"E"}
    subtotal = "cac:TaxTotal/cac:TaxSubtotal"
    assert decimal(tree, f"{subtotal}/cac:TaxCategory/cbc:Percent") == 0  # BR-E-05
    assert decimal(tree, f"{subtotal}/cbc:TaxAmount") == 0  # BR-E-09
    assert decimal(tree, f"{subtotal}/cbc:TaxableAmount") == Decimal("599.00")  # BR-E-08
    assert one(tree, f"{subtotal}/cac:TaxCategory/cbc:TaxExemptionReason")  # BR-E-10
    seller_tax = "cac:AccountingSupplierParty/cac:Party/cac:PartyTaxScheme"
    assert one(tree, f"{seller_tax}/cbc:CompanyID") == CVR  # BT-32, for BR-E-02
    assert one(tree, f"{seller_tax}/cac:TaxScheme/cbc:ID") != "VAT"  # not a VAT number (BT-31)


def test_BR_55_a_credit_note_refers_to_the_invoice_it_credits() -> None:
    tree = parsed(credit_note())
    assert one(tree, "cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID") == "1234"
    assert not tree.xpath("cac:PaymentMeans", namespaces=NS)


def test_DK_R_016_a_credit_note_total_is_not_negative() -> None:
    assert decimal(parsed(credit_note()), "cac:LegalMonetaryTotal/cbc:PayableAmount") == Decimal("273.65")


def test_PEPPOL_EN16931_R002_at_most_one_note_and_R003_the_buyer_reference() -> None:
    tree = parsed(invoice())
    assert one(tree, "cbc:Note") == "Tak for dit abonnement."
    assert one(tree, "cbc:BuyerReference") == "K-10042"
    with pytest.raises(ValueError, match="PEPPOL-EN16931-R003"):
        render_ubl(invoice(buyer_reference=None))


def test_PEPPOL_EN16931_R008_no_empty_elements() -> None:
    for document in EVERY_KIND.values():
        tree = parsed(document)
        empty = tree.xpath("//*[not(*) and normalize-space(.) = '']", namespaces=NS)
        assert empty == [], empty


def test_PEPPOL_EN16931_R010_the_buyers_electronic_address_is_its_EAN_scheme_0088() -> None:
    tree = parsed(invoice())
    assert one(tree, "cac:AccountingCustomerParty/cac:Party/cbc:EndpointID") == BUYER_EAN
    assert one(tree, "cac:AccountingCustomerParty/cac:Party/cbc:EndpointID/@schemeID") == "0088"
    with pytest.raises(ValueError, match="PEPPOL-EN16931-R010"):
        render_ubl(invoice(buyer=dataclasses.replace(BUYER, ean=None)))


def test_PEPPOL_EN16931_R020_the_sellers_electronic_address_is_its_CVR_scheme_0184() -> None:
    """PEPPOL-COMMON-R042: a 0184 identifier is "DK" followed by the 8 CVR digits."""
    tree = parsed(invoice())
    party = "cac:AccountingSupplierParty/cac:Party"
    assert one(tree, f"{party}/cbc:EndpointID") == f"DK{CVR}"
    assert one(tree, f"{party}/cbc:EndpointID/@schemeID") == "0184"
    assert re.fullmatch(r"DK[0-9]{8}", one(tree, f"{party}/cbc:EndpointID"))
    with pytest.raises(ValueError, match="PEPPOL-EN16931-R020"):
        render_ubl(invoice(seller=dataclasses.replace(SELLER, registration_number=None)))


def test_DK_R_002_and_DK_R_014_the_seller_states_its_CVR_with_scheme_0184() -> None:
    tree = parsed(invoice())
    legal = "cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity/cbc:CompanyID"
    assert one(tree, legal) == f"DK{CVR}"
    assert one(tree, f"{legal}/@schemeID") == "0184"


def test_I1_DK_R_010_DK_R_011_FIK_is_payment_means_93_with_card_type_payment_id_and_creditor() -> None:
    tree = parsed(invoice())
    means = tree.xpath("cac:PaymentMeans", namespaces=NS)
    assert isinstance(means, list) and len(means) == 1  # BG-16 is 0..1
    assert one(tree, "cac:PaymentMeans/cbc:PaymentMeansCode") == "93"
    payment_id = one(tree, "cac:PaymentMeans/cbc:PaymentID")
    assert payment_id == "71#000000000012344" and len(payment_id) == 18  # DK-R-011
    creditor = one(tree, "cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID")
    assert creditor == CREDITOR and len(creditor) == 8  # DK-R-010


def test_DK_R_005_DK_R_006_a_bank_account_has_its_branch_and_the_payment_message() -> None:
    danish = parsed(invoice(payment_reference=None))
    assert one(danish, "cac:PaymentMeans/cbc:PaymentMeansCode") == "42"
    assert one(danish, "cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID") == "0001234567"
    branch = "cac:PaymentMeans/cac:PayeeFinancialAccount/cac:FinancialInstitutionBranch/cbc:ID"
    assert one(danish, branch) == "1234"
    assert one(danish, "cac:PaymentMeans/cbc:PaymentID") == "Nordlys 1234"  # BT-83
    iban = parsed(invoice(payment_reference=None, seller_account=IBAN_ACCOUNT))
    assert one(iban, "cac:PaymentMeans/cbc:PaymentMeansCode") == "31"
    assert one(iban, "cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID") == "DK5000400440116243"
    assert one(iban, branch) == "DABADKKK"


def test_PEPPOL_EN16931_R120_line_amount_is_quantity_times_price_over_base_quantity() -> None:
    for document in (invoice(), EVERY_KIND["invoice_uneven_unit_price"]):
        lines = parsed(document).xpath("cac:InvoiceLine", namespaces=NS)
        assert isinstance(lines, list)
        for line in lines:
            quantity = decimal(line, "cbc:InvoicedQuantity")
            base = line.xpath("cac:Price/cbc:BaseQuantity/text()", namespaces=NS)
            base_quantity = Decimal(str(base[0])) if base else Decimal(1)
            price = decimal(line, "cac:Price/cbc:PriceAmount")
            assert quantity * price / base_quantity == decimal(line, "cbc:LineExtensionAmount")
    uneven = parsed(EVERY_KIND["invoice_uneven_unit_price"])
    assert one(uneven, "cac:InvoiceLine/cac:Price/cbc:PriceAmount") == "100.00"  # never 33.333…
    assert one(uneven, "cac:InvoiceLine/cac:Price/cbc:BaseQuantity") == "3"


def test_M6_EUR_amounts_have_two_decimals_from_integer_cents() -> None:
    tree = parsed(in_currency("EUR", 49900, 1))
    assert one(tree, "cac:InvoiceLine[1]/cbc:LineExtensionAmount") == "499.00"
    assert one(tree, "cac:InvoiceLine[2]/cbc:LineExtensionAmount") == "0.01"
    assert one(tree, "cac:LegalMonetaryTotal/cbc:PayableAmount") == "499.01"


def test_M6_JPY_amounts_have_no_decimals() -> None:
    tree = parsed(in_currency("JPY", 500, 7))
    assert one(tree, "cbc:DocumentCurrencyCode") == "JPY"
    assert one(tree, "cac:InvoiceLine[1]/cbc:LineExtensionAmount") == "500"
    assert one(tree, "cac:LegalMonetaryTotal/cbc:PayableAmount") == "507"
    assert one(tree, "cac:TaxTotal/cbc:TaxAmount") == "0"


def test_BR_DEC_a_currency_with_three_decimals_is_refused_not_rounded() -> None:
    with pytest.raises(ValueError, match="BR-DEC"):
        render_ubl(in_currency("KWD", 1234))


@pytest.mark.parametrize(("minor_units", "currency", "text"), [
    (49900, "DKK", "499.00"), (5, "DKK", "0.05"), (-1999, "EUR", "-19.99"), (0, "EUR", "0.00"),
    (500, "JPY", "500"), (123456789012345678, "DKK", "1234567890123456.78"),
])
def test_amounts_are_written_from_integers_never_through_floats(
        minor_units: int, currency: str, text: str) -> None:
    assert ubl_module.amount_text(minor_units, currency) == text


# -------------------------------------------------------------------------------------- PDF

A4_MEDIA_BOX = b"/MediaBox [0 0 595.28 841.89]"


def _unescape_pdf_string(raw: bytes) -> bytes:
    """A PDF literal string's bytes, with its backslash escapes undone (PDF 1.7, 7.3.4.2)."""
    simple = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("f"): b"\f"}
    out, i = bytearray(), 0
    while i < len(raw):
        if raw[i] != ord("\\"):
            out.append(raw[i])
            i += 1
            continue
        following = raw[i + 1]
        octal = re.match(rb"[0-7]{1,3}", raw[i + 1:i + 4])
        if octal:
            out.append(int(octal.group(), 8) & 0xFF)
            i += 1 + len(octal.group())
        else:
            out += simple.get(following, bytes([following]))
            i += 2
    return bytes(out)


def pdf_text(pdf: bytes) -> str:
    """The text an uncompressed fpdf2 PDF shows, one line per text-showing operator.

    Core fonts show their text as Windows-1252; an embedded TrueType subset shows 2-byte glyph
    codes that its /ToUnicode map turns back into characters, so the map of the current font
    (selected with Tf) is applied.
    """
    objects = {int(m[1]): m[2] for m in re.finditer(rb"(\d+) 0 obj(.*?)endobj", pdf, re.S)}
    font_objects = {name: int(ref) for body in objects.values()
                    for block in re.findall(rb"/Font\s*<<(.*?)>>", body, re.S)
                    for name, ref in re.findall(rb"/(F\d+) (\d+) 0 R", block)}
    to_unicode: dict[bytes, dict[int, str]] = {}
    for name, ref in font_objects.items():
        found = re.search(rb"/ToUnicode (\d+) 0 R", objects[ref])
        if found is None:
            continue
        cmap = objects[int(found[1])]
        mapping = {int(code, 16): chr(int(char, 16))
                   for code, char in re.findall(rb"<([0-9A-F]{4})> <([0-9A-F]{4})>", cmap)}
        to_unicode[name] = mapping
    lines: list[str] = []
    for body in objects.values():
        if b"stream" not in body or b" Tj" not in body:
            continue
        font = b""
        # One line per text object (BT … ET): fpdf2 shows "Page 1 of " and the page count
        # as two strings in one object.
        for token in re.finditer(rb"/(F\d+) [\d.]+ Tf|\(((?:\\.|[^\\)])*)\) Tj|(ET)", body, re.S):
            if token[1] is not None:
                font = token[1]
            elif token[3] is not None:
                lines.append("")
            else:
                raw = _unescape_pdf_string(token[2])
                if font in to_unicode:
                    codes = [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)]
                    lines[-1:] = [(lines[-1] if lines else "")
                                  + "".join(to_unicode[font].get(code, "\ufffd") for code in codes)]
                else:
                    lines[-1:] = [(lines[-1] if lines else "") + raw.decode("cp1252")]
    return "\n".join(line for line in lines if line)


def test_a_pdf_is_one_A4_page_and_starts_and_ends_as_a_pdf_does() -> None:
    pdf = render_pdf(invoice())
    assert pdf.startswith(b"%PDF-1.") and pdf.rstrip().endswith(b"%%EOF")
    assert pdf.count(b"/Type /Page\n") == 1
    assert A4_MEDIA_BOX in pdf


def test_an_invoice_pdf_shows_seller_buyer_number_dates_lines_total_and_the_I1_FIK_line() -> None:
    text = pdf_text(render_pdf(invoice(), compress=False))
    for expected in (
        "Invoice", "Nordlys Abonnement ApS", "Åboulevarden 12, 2. sal", "8000 Aarhus C", f"CVR {CVR}",
        "Søren Kjærgård Ærø", "Østergade 7", "c/o Bøgeskov", "2100 København Ø",
        "1234", "2026-03-01", "2026-03-15", "K-10042", BUYER_EAN,
        "Avis, marts 2026 (papir + digital)", "Weekendtillæg", "499.00 DKK", "100.00 DKK", "599.00 DKK",
        "+71< 000000000012344 +85123456<",  # the slip's code line: card type, payment id, creditor
        "Reg. no. 1234  Account no. 0001234567", "Nordlys 1234", "Tak for dit abonnement.", "Page 1 of 1",
    ):
        assert expected in text, f"{expected!r} is not in the PDF's text:\n{text}"


def test_a_credit_note_pdf_names_the_invoice_it_credits() -> None:
    text = pdf_text(render_pdf(credit_note(), compress=False))
    for expected in ("Credit note", "CN-77", "Credits invoice no.", "273.65 DKK",
                     "This credit note credits 273.65 DKK on invoice no. 1234."):
        assert expected in text, f"{expected!r} is not in the PDF's text:\n{text}"
    assert "+71<" not in text and "Please pay" not in text


def test_an_IBAN_is_printed_in_groups_of_four_with_its_BIC() -> None:
    text = pdf_text(render_pdf(invoice(seller_account=IBAN_ACCOUNT), compress=False))
    assert "IBAN DK50 0040 0440 1162 43" in text and "BIC DABADKKK" in text


def test_the_same_document_gives_the_same_bytes_dated_by_its_issue_date() -> None:
    first, second = render_pdf(invoice()), render_pdf(invoice())
    assert first == second
    assert b"/CreationDate (D:20260301000000Z)" in first


def test_a_long_invoice_breaks_across_pages_each_numbered() -> None:
    document = EVERY_KIND["many_lines"]
    many = invoice(lines=document.lines * 2)
    pdf = render_pdf(many, compress=False)
    pages = pdf.count(b"/Type /Page\n")
    assert pages >= 2
    text = pdf_text(pdf)
    for page in range(1, pages + 1):
        assert f"Page {page} of {pages}" in text
    assert "Nr. 39" in text and str(many.total) in text


@pytest.mark.skipif(pdf_module.find_unicode_font() is None, reason="DejaVu Sans is not installed")
def test_names_outside_latin_1_print_with_the_unicode_font() -> None:
    buyer = dataclasses.replace(BUYER, name="Łukasz Żółć – Ærø")
    text = pdf_text(render_pdf(invoice(buyer=buyer), compress=False))
    assert "Łukasz Żółć – Ærø" in text


def test_without_a_unicode_font_the_core_fonts_keep_danish_letters_and_replace_the_rest() -> None:
    buyer = dataclasses.replace(BUYER, name="Łukasz Żółć – Ærø")
    pdf = render_pdf(invoice(buyer=buyer), compress=False, unicode_font=False)
    assert b"/FontFile2" not in pdf  # nothing embedded: the core fonts
    text = pdf_text(pdf)
    assert "Søren" not in text and "?ukasz Zó?c – Ærø" in text
    assert "København Ø" in text and "Weekendtillæg" in text and "599.00 DKK" in text


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils is not installed")
def test_poppler_reads_the_same_text(tmp_path: Path) -> None:
    """A second opinion on the decoder above, from a maintained PDF reader."""
    path = tmp_path / "invoice.pdf"
    path.write_bytes(render_pdf(invoice()))
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout
    for expected in ("Søren Kjærgård Ærø", "København Ø", "599.00 DKK", "+71< 000000000012344 +85123456<"):
        assert expected in text


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils (pdftoppm) is not installed")
def test_the_pdf_as_a_picture(tmp_path: Path) -> None:
    """Rendered to PNG by poppler: an A4 page, ink where the title, buyer, lines and FIK line
    are, a white band between the last block and the footer. The PNG is kept in tmp_path
    (pytest prints the directory with -v --basetemp) for a person to look at."""
    from PIL import Image  # fpdf2 depends on Pillow, so it is installed wherever fpdf2 is

    path = tmp_path / "invoice.pdf"
    path.write_bytes(render_pdf(invoice()))
    subprocess.run(["pdftoppm", "-r", "50", "-png", "-singlefile", str(path), str(tmp_path / "invoice")],
                   check=True, timeout=60)
    picture = Image.open(tmp_path / "invoice.png").convert("L")
    width, height = picture.size
    assert abs(height / width - 297 / 210) < 0.01

    def ink(left_mm: float, top_mm: float, right_mm: float, bottom_mm: float) -> int:
        """How many pixels in the box are not white (grey footer text counts)."""
        left, top, right, bottom = (round(v / 210 * width) for v in (left_mm, top_mm, right_mm, bottom_mm))
        return sum(picture.crop((left, top, right, bottom)).histogram()[:200])

    assert ink(150, 15, 190, 30) > 0  # the title, top right
    assert ink(20, 50, 100, 75) > 0  # the buyer in the envelope window
    assert ink(20, 90, 190, 130) > 0  # the lines table
    assert ink(20, 200, 190, 270) == 0  # nothing between the note and the footer
    assert ink(20, 278, 190, 285) > 0  # the footer
