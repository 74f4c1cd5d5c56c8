"""`python -m bench`: Saldo's throughput and latency next to their ceilings, in one run.

See docs/performance.md for what is measured, how to read it and the figures of a real run.
"""
