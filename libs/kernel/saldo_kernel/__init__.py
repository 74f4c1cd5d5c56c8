"""The shared kernel of Saldo's domains: money, the aggregate base and the errors of a rule.

A domain module imports nothing but the `eventsourcing` domain base and this package; it
knows nothing of HTTP, Kafka or databases (docs/architecture.md, "Layering").
"""
