"""OpenTelemetry: one trace from the HTTP request through the event store and Kafka to consumers.

Logs are configured in `logs.py` (JSON lines with the current trace and span ids).
Exporters come from the standard `OTEL_*` variables (OTLP over HTTP when
`OTEL_EXPORTER_OTLP_ENDPOINT` is set). `SALDO_TRACE_FILE` additionally writes finished
spans as JSON lines, which is how tests and operators without a collector can look at traces.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_propagator = TraceContextTextMapPropagator()
_configured = False
_lock = threading.Lock()

tracer = trace.get_tracer("saldo")
meter = metrics.get_meter("saldo")
commands_counter = meter.create_counter("saldo.commands", description="HTTP commands handled")
relayed_counter = meter.create_counter("saldo.events.relayed", description="Events published")
consumed_counter = meter.create_counter("saldo.events.consumed", description="Events applied")
dead_letter_counter = meter.create_counter("saldo.events.dead_lettered")
relay_backlog = meter.create_gauge(
    "saldo.relay.backlog", description="Stored events the relay has not published yet")
consumer_lag = meter.create_gauge(
    "saldo.consumer.lag", description="Messages on a partition the consumer has not read yet")


class JsonLinesSpanExporter(SpanExporter):
    """Finished spans as JSON lines; several processes may append to the same file.

    Each export is one `write(2)` on a descriptor opened with O_APPEND, so the lines of two
    processes never interleave (a buffered text file may split a long batch into several
    writes, and another process's line could land in the middle of one).
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = []
        for span in spans:
            ctx = span.get_span_context()
            if ctx is None:
                continue
            lines.append(json.dumps({
                "name": span.name,
                "kind": span.kind.name,
                "trace_id": format(ctx.trace_id, "032x"),
                "span_id": format(ctx.span_id, "016x"),
                "parent_span_id": format(span.parent.span_id, "016x") if span.parent else None,
                "service": span.resource.attributes.get("service.name"),
                "start_time": span.start_time,
                "end_time": span.end_time,
                "status": span.status.status_code.name,
                "attributes": {k: str(v) for k, v in (span.attributes or {}).items()},
            }))
        data = "".join(line + "\n" for line in lines).encode("utf-8")
        with self._lock:
            try:
                fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            except OSError:
                return SpanExportResult.FAILURE
            try:
                view = memoryview(data)
                while view:  # a regular file takes it in one write; loop for the odd short write
                    view = view[os.write(fd, view):]
            except OSError:
                return SpanExportResult.FAILURE
            finally:
                os.close(fd)
        return SpanExportResult.SUCCESS


def setup(service_name: str) -> None:
    """Install the tracer provider once per process (the embedded mode shares one)."""
    global _configured
    with _lock:
        if _configured:
            return
        _configured = True
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)})
    provider = TracerProvider(resource=resource)
    if _otlp("TRACES"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if _otlp("METRICS"):
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        metrics.set_meter_provider(MeterProvider(
            resource=resource, metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())]))
    if path := os.environ.get("SALDO_TRACE_FILE"):
        provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))
    trace.set_tracer_provider(provider)


def _otlp(signal: str) -> bool:
    """The standard variables: a common endpoint, or one for this signal."""
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                or os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"))


def current_traceparent() -> str | None:
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


def context_from(traceparent: str | None) -> Context | None:
    if not traceparent:
        return None
    return _propagator.extract({"traceparent": traceparent})
