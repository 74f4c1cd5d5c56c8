"""Accounting sync: double-entry postings of every financial event."""
