"""Refunds: giving money back from a payment through the right channel."""
