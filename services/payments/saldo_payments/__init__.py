"""Payments: received payments, their allocation to invoices, and released amounts."""
