"""Shared mechanisms of every Saldo service, written once.

The relay, the consumer runner, the bus, the SQL read-model store, settings,
HTTP problems, idempotency, auth and telemetry live here; services only wire them.
"""
