"""Payouts: bank payout drafts, and marking them paid out."""
