"""Peppol BIS Billing 3.0 documents: a UBL 2.1 Invoice or CreditNote for customers with an EAN.

What each part follows (rule ids are EN 16931's BR-*, Peppol's PEPPOL-EN16931-* and
PEPPOL-COMMON-*, and the Danish national rules DK-R-* in Peppol's BIS 3 schematron):

- Header: CustomizationID and ProfileID of BIS Billing 3.0 (BR-01, PEPPOL-EN16931-R001/R004),
  ID (BR-02), IssueDate (BR-03), DueDate on invoices (BR-CO-25), type code 380 / 381 (BR-04),
  currency (BR-05), BuyerReference (PEPPOL-EN16931-R003), a credit note's BillingReference
  to the invoice it credits (BT-25, BR-55), at most one Note (PEPPOL-EN16931-R002).
- Parties: seller and buyer names (BR-06, BR-07), postal addresses with country
  (BR-08..BR-11), electronic addresses (PEPPOL-EN16931-R020 seller, R010 buyer): an EAN/GLN
  with EAS scheme 0088, else a Danish CVR with scheme 0184 written "DK" + 8 digits
  (PEPPOL-COMMON-R042); the seller's CVR as its legal registration, scheme 0184 (DK-R-002,
  DK-R-014).
- Payment, one instruction (BG-16): FIK card type 71 is PaymentMeansCode 93 with PaymentID
  "71#<15-digit payment id>" and the 8-digit creditor number as PayeeFinancialAccount/ID
  (DK-R-010, DK-R-011; the same facts OIOUBL carries as PaymentID 71, InstructionID and
  CreditAccount). Without FIK, the bank account: code 31 with IBAN + BIC, or code 42 with the
  Danish account number and its 4-digit registration number as the branch (DK-R-005,
  DK-R-006); the payment message is then the remittance information (BT-83, PaymentID).
- Totals: LineExtensionAmount = sum of the lines (BR-CO-10), TaxExclusive = that (no
  allowances or charges), TaxInclusive = TaxExclusive + tax (BR-CO-15), Payable =
  TaxInclusive (BR-CO-16); amounts carry currencyID and the currency's decimals, at most 2
  (BR-DEC-*): a currency with 3 decimals (BHD, KWD, …) is refused rather than rounded.

Known limit: Saldo computes no VAT yet. Every line is VAT category E ("exempt", 0 %), with
one breakdown whose exemption reason is stated (BR-E-01, BR-E-05, BR-E-08..BR-E-10), and the
seller's CVR as its tax registration identifier (BT-32, BR-E-02). A seller that must charge
Danish VAT cannot use these documents until VAT is modelled.

The documents are checked against the OASIS UBL 2.1 schemas shipped beside this module
(`schema/`, see its NOTICE.md); the Peppol Schematron rules are not run here (they need an
XSLT 2 processor), the rules above are checked by the tests with XPath instead.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lxml import etree

from saldo_invoicing.documents.model import Document, Party
from saldo_kernel.currencies import MINOR_UNITS

CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE_ID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
INVOICE_TYPE_CODE = "380"  # UNCL1001 commercial invoice
CREDIT_NOTE_TYPE_CODE = "381"  # UNCL1001 credit note
UNIT_CODE = "EA"  # UN/ECE Recommendation 20: each
EAS_GLN = "0088"  # Peppol Electronic Address Scheme: EAN Location Code (GLN)
EAS_DK_CVR = "0184"  # Peppol Electronic Address Scheme: DIGSTORG, the Danish CVR number
VAT_EXEMPT = "E"
TAX_AMOUNT = 0  # minor units: every line is VAT category E (the module's known limit)
DEFAULT_EXEMPTION_REASON = "Exempt from VAT"
MAX_DECIMALS = 2  # BR-DEC-*: at most two decimals in every amount

NS = {
    "inv": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "cn": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
SCHEMA_DIR = Path(__file__).parent / "schema"
SCHEMA_ENTRY = SCHEMA_DIR / "saldo-ubl-2.1.xsd"


class InvalidUblDocument(ValueError):
    """A UBL document breaks the UBL 2.1 schema; the message lists each error with its line."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("UBL document does not validate against the UBL 2.1 schema:\n"
                         + "\n".join(errors))
        self.errors = errors


def amount_text(minor_units: int, currency: str) -> str:
    """An amount as UBL writes it, from integer minor units: 49900 DKK → "499.00", 500 JPY → "500"."""
    exponent = MINOR_UNITS[currency]
    if exponent > MAX_DECIMALS:
        raise ValueError(
            f"{currency} has {exponent} decimals; Peppol BIS 3 amounts have at most {MAX_DECIMALS} "
            "(BR-DEC rules), and Saldo never rounds money to fit"
        )
    sign = "-" if minor_units < 0 else ""
    whole, fraction = divmod(abs(minor_units), 10**exponent)
    return f"{sign}{whole}.{fraction:0{exponent}d}" if exponent else f"{sign}{whole}"


def _unit_price_text(line_minor_units: int, quantity: int, currency: str) -> tuple[str, int]:
    """(price, base quantity) whose product with the quantity is exactly the line amount.

    When the quantity divides the amount the price is per unit (base quantity 1); otherwise
    the price is the whole line's amount per `quantity` units (PEPPOL-EN16931-R120: line
    amount = quantity × price / base quantity), so no unit price is ever rounded.
    """
    if line_minor_units % quantity == 0:
        return amount_text(line_minor_units // quantity, currency), 1
    return amount_text(line_minor_units, currency), quantity


class _Builder:
    def __init__(self, document: Document) -> None:
        self.document = document
        self.currency = document.currency

    def element(self, parent: etree._Element, tag: str, text: str | None = None,
                **attributes: str) -> etree._Element:
        prefix, name = tag.split(":")
        node = etree.SubElement(parent, f"{{{NS[prefix]}}}{name}", attributes)
        if text is not None:
            node.text = text
        return node

    def amount(self, parent: etree._Element, tag: str, minor_units: int) -> etree._Element:
        return self.element(parent, tag, amount_text(minor_units, self.currency), currencyID=self.currency)

    def endpoint(self, parent: etree._Element, party: Party, role: str, rule: str) -> None:
        if party.ean is not None:
            self.element(parent, "cbc:EndpointID", party.ean, schemeID=EAS_GLN)
        elif party.registration_number is not None and party.country == "DK":
            self.element(parent, "cbc:EndpointID", f"DK{party.registration_number}", schemeID=EAS_DK_CVR)
        else:
            raise ValueError(f"the {role} has no Peppol electronic address, neither an EAN nor a "
                             f"Danish CVR number ({rule})")

    def postal_address(self, parent: etree._Element, party: Party) -> None:
        address = self.element(parent, "cac:PostalAddress")
        lines = list(party.address_lines)
        # BIS 3 has three address lines (BT-35, BT-36, BT-162); a fourth joins the third.
        if lines:
            self.element(address, "cbc:StreetName", lines[0])
        if len(lines) > 1:
            self.element(address, "cbc:AdditionalStreetName", lines[1])
        if party.city:
            self.element(address, "cbc:CityName", party.city)
        if party.postal_code:
            self.element(address, "cbc:PostalZone", party.postal_code)
        if len(lines) > 2:
            line = self.element(address, "cac:AddressLine")
            self.element(line, "cbc:Line", ", ".join(lines[2:]))
        country = self.element(address, "cac:Country")
        self.element(country, "cbc:IdentificationCode", party.country)

    def party(self, parent: etree._Element, wrapper: str, party: Party, *, seller: bool) -> None:
        node = self.element(self.element(parent, wrapper), "cac:Party")
        if seller:
            self.endpoint(node, party, "seller", "PEPPOL-EN16931-R020")
        else:
            self.endpoint(node, party, "buyer", "PEPPOL-EN16931-R010")
        name = self.element(node, "cac:PartyName")
        self.element(name, "cbc:Name", party.name)
        self.postal_address(node, party)
        if seller and party.registration_number is not None:
            # BT-32, the seller's tax registration identifier: what BR-E-02 asks of a seller
            # whose lines are VAT-exempt. Not BT-31: that would claim a VAT registration.
            tax_scheme = self.element(node, "cac:PartyTaxScheme")
            self.element(tax_scheme, "cbc:CompanyID", party.registration_number)
            self.element(self.element(tax_scheme, "cac:TaxScheme"), "cbc:ID", "TAX")
        legal = self.element(node, "cac:PartyLegalEntity")
        self.element(legal, "cbc:RegistrationName", party.name)
        if party.registration_number is not None and party.country == "DK":
            self.element(legal, "cbc:CompanyID", f"DK{party.registration_number}", schemeID=EAS_DK_CVR)
        if party.email is not None:
            contact = self.element(node, "cac:Contact")
            self.element(contact, "cbc:ElectronicMail", party.email)

    def payment_means(self, root: etree._Element) -> None:
        """One payment instruction (EN 16931 BG-16 is 0..1): FIK when the invoice has one,
        because the payments service matches on it (I1, P5); else the bank account; a
        credit note asks for no payment and has none."""
        document = self.document
        fik = document.fik()
        account = document.seller_account
        if fik is not None:
            card_type, payment_id, creditor = fik
            means = self.element(root, "cac:PaymentMeans")
            self.element(means, "cbc:PaymentMeansCode", "93", name="FIK")
            self.element(means, "cbc:PaymentID", f"{card_type}#{payment_id}")
            self.element(self.element(means, "cac:PayeeFinancialAccount"), "cbc:ID", creditor)
        elif account is not None and not document.is_credit_note:
            means = self.element(root, "cac:PaymentMeans")
            if account.iban is not None and account.bic is not None:
                self.element(means, "cbc:PaymentMeansCode", "31", name="Credit transfer")
            else:
                self.element(means, "cbc:PaymentMeansCode", "42", name="Payment to bank account")
            if document.payment_message is not None:
                self.element(means, "cbc:PaymentID", document.payment_message)
            financial = self.element(means, "cac:PayeeFinancialAccount")
            self.element(financial, "cbc:ID", account.iban or account.account_number)
            self.element(financial, "cbc:Name", document.seller.name)
            branch = self.element(financial, "cac:FinancialInstitutionBranch")
            self.element(branch, "cbc:ID", account.bic or account.registration_number)

    def tax_category(self, parent: etree._Element, tag: str, *, with_reason: bool) -> None:
        category = self.element(parent, tag)
        self.element(category, "cbc:ID", VAT_EXEMPT)
        self.element(category, "cbc:Percent", "0")
        if with_reason:
            self.element(category, "cbc:TaxExemptionReason", DEFAULT_EXEMPTION_REASON)
        self.element(self.element(category, "cac:TaxScheme"), "cbc:ID", "VAT")

    def tax_total(self, root: etree._Element) -> None:
        total = self.element(root, "cac:TaxTotal")
        self.amount(total, "cbc:TaxAmount", TAX_AMOUNT)
        subtotal = self.element(total, "cac:TaxSubtotal")
        self.amount(subtotal, "cbc:TaxableAmount", self.document.total.minor_units)
        self.amount(subtotal, "cbc:TaxAmount", TAX_AMOUNT)
        self.tax_category(subtotal, "cac:TaxCategory", with_reason=True)

    def monetary_total(self, root: etree._Element) -> None:
        line_total = sum(line.amount.minor_units for line in self.document.lines)  # BR-CO-10
        tax_exclusive = line_total  # no document-level allowances or charges (BR-CO-13)
        tax_inclusive = tax_exclusive + TAX_AMOUNT  # BR-CO-15
        legal = self.element(root, "cac:LegalMonetaryTotal")
        self.amount(legal, "cbc:LineExtensionAmount", line_total)
        self.amount(legal, "cbc:TaxExclusiveAmount", tax_exclusive)
        self.amount(legal, "cbc:TaxInclusiveAmount", tax_inclusive)
        self.amount(legal, "cbc:PayableAmount", tax_inclusive)  # nothing prepaid (BR-CO-16)

    def lines(self, root: etree._Element) -> None:
        credit = self.document.is_credit_note
        line_tag = "cac:CreditNoteLine" if credit else "cac:InvoiceLine"
        quantity_tag = "cbc:CreditedQuantity" if credit else "cbc:InvoicedQuantity"
        for number, line in enumerate(self.document.lines, start=1):
            node = self.element(root, line_tag)
            self.element(node, "cbc:ID", str(number))
            self.element(node, quantity_tag, str(line.quantity), unitCode=UNIT_CODE)
            self.amount(node, "cbc:LineExtensionAmount", line.amount.minor_units)
            item = self.element(node, "cac:Item")
            self.element(item, "cbc:Name", line.description)
            self.tax_category(item, "cac:ClassifiedTaxCategory", with_reason=False)
            price_text, base_quantity = _unit_price_text(
                line.amount.minor_units, line.quantity, self.currency)
            price = self.element(node, "cac:Price")
            self.element(price, "cbc:PriceAmount", price_text, currencyID=self.currency)
            if base_quantity != 1:
                self.element(price, "cbc:BaseQuantity", str(base_quantity), unitCode=UNIT_CODE)

    def build(self) -> etree._Element:
        document = self.document
        credit = document.is_credit_note
        root_ns = NS["cn"] if credit else NS["inv"]
        root = etree.Element(f"{{{root_ns}}}{'CreditNote' if credit else 'Invoice'}",
                             nsmap={None: root_ns, "cac": NS["cac"], "cbc": NS["cbc"]})
        self.element(root, "cbc:CustomizationID", CUSTOMIZATION_ID)
        self.element(root, "cbc:ProfileID", PROFILE_ID)
        self.element(root, "cbc:ID", document.number)
        self.element(root, "cbc:IssueDate", document.issue_date.isoformat())
        if not credit:
            assert document.due_date is not None  # the model requires it of invoices (BR-CO-25)
            self.element(root, "cbc:DueDate", document.due_date.isoformat())
            self.element(root, "cbc:InvoiceTypeCode", INVOICE_TYPE_CODE)
        else:
            self.element(root, "cbc:CreditNoteTypeCode", CREDIT_NOTE_TYPE_CODE)
        if document.note is not None:
            self.element(root, "cbc:Note", document.note)
        self.element(root, "cbc:DocumentCurrencyCode", self.currency)
        if document.buyer_reference is None:
            raise ValueError("a Peppol document needs the buyer's reference (PEPPOL-EN16931-R003): "
                             "pass the customer's own reference, or its customer id")
        self.element(root, "cbc:BuyerReference", document.buyer_reference)
        if credit:
            assert document.credited_invoice_number is not None  # the model requires it
            billing = self.element(root, "cac:BillingReference")
            reference = self.element(billing, "cac:InvoiceDocumentReference")
            self.element(reference, "cbc:ID", document.credited_invoice_number)
        self.party(root, "cac:AccountingSupplierParty", document.seller, seller=True)
        self.party(root, "cac:AccountingCustomerParty", document.buyer, seller=False)
        self.payment_means(root)
        self.tax_total(root)
        self.monetary_total(root)
        self.lines(root)
        return root


def render_ubl(document: Document) -> bytes:
    """The document as Peppol BIS Billing 3.0 UBL 2.1 XML (UTF-8, with an XML declaration)."""
    root = _Builder(document).build()
    xml: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return xml


@cache
def ubl_schema() -> etree.XMLSchema:
    """The UBL 2.1 Invoice and CreditNote schemas, loaded once, from the files shipped here.

    Nothing is fetched: every import resolves to a file under `schema/`, and the parser is
    told not to touch the network.
    """
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    return etree.XMLSchema(etree.parse(str(SCHEMA_ENTRY), parser))


def validate_ubl(xml: bytes) -> None:
    """Raise InvalidUblDocument (a ValueError) unless `xml` is a UBL 2.1 Invoice or CreditNote
    that the official schema accepts; return None if it is."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    try:
        tree = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError as error:
        raise InvalidUblDocument([f"not well-formed XML: {error}"]) from error
    if tree.tag not in (f"{{{NS['inv']}}}Invoice", f"{{{NS['cn']}}}CreditNote"):
        raise InvalidUblDocument([f"the root element is {tree.tag}, not a UBL 2.1 Invoice or CreditNote"])
    schema = ubl_schema()
    if not schema.validate(tree):
        raise InvalidUblDocument([f"line {error.line}: {error.message}" for error in schema.error_log])
