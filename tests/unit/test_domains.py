"""The aggregates' rules, without I/O: scenarios an operator would recognise."""

from __future__ import annotations
