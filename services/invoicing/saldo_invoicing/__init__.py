"""Invoicing: customers' invoices, credit notes and their numbering."""
