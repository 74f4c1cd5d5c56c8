"""The results as a markdown report (stdout), JSON and, if matplotlib is there, a PNG."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from bench.eventstore import CUSTOMERS
from bench.relay import AIOKAFKA_ONLY


def _n(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}"


def _ratio(product: Any, ceiling: Any) -> str:
    if not product or not ceiling:
        return "–"
    return f"{product / ceiling:.0%}"


def _rate(section: dict[str, Any] | None) -> float | None:
    if not section or "error" in section:
        return None
    if "rate" in section:
        return section["rate"]["per_second"]  # type: ignore[no-any-return]
    return section.get("per_second")


def throughput_rows(t: dict[str, Any]) -> list[tuple[str, float | None, str, float | None]]:
    c = t["ceilings"]
    relay, kafka = _rate(t.get("relay")), _rate(c.get("kafka_producer_perf"))
    aio = _rate(t.get("relay_breakdown", {}).get(AIOKAFKA_ONLY))
    pg1, pg4 = _rate(c.get("pgbench_1_client")), _rate(c.get("pgbench_4_clients"))
    bare, saldo = _rate(c.get("bare_eventsourcing_append")), _rate(c.get("saldo_append"))
    replay = _rate(t.get("replay", {}).get("projection"))
    rebuilt = _rate(t.get("replay", {}).get("rebuild"))
    return [
        ("Relay: publish_after loop, event store → Kafka", relay,
         "(b) kafka-producer-perf (Java), same record size", kafka),
        ("Relay: publish_after loop, event store → Kafka", relay,
         "aiokafka alone (Saldo's KafkaProducer, pre-encoded)", aio),
        ("Append: InvoicingApplication.save, 1 event/txn", saldo,
         "(a) bare eventsourcing append loop", bare),
        ("(a) bare eventsourcing append loop", bare,
         "(c) pgbench single-row INSERT, 1 client", pg1),
        ("(c) pgbench single-row INSERT, 1 client", pg1, "(c) pgbench, 4 clients", pg4),
        ("Replay: Kafka → ConsumerRunner → invoices projection", replay,
         "(c) pgbench single-row INSERT, 1 client", pg1),
        ("Replay: `saldo rebuild invoicing` (rebuild + compare)", rebuilt,
         "(c) pgbench single-row INSERT, 1 client", pg1),
    ]


def markdown(results: dict[str, Any]) -> str:
    run, m, t = results["run"], results["machine"], results["throughput"]
    lat = results.get("latency")
    out = [f"# Saldo bench — {run['date']}", "",
           f"`{run['command']}` · tag `{run['tag']}` · git {run['git']}",
           f"{m['nproc']} cores ({m['cpu']}), {m['memory_gib']} GiB, Python {m['python']}, "
           f"PostgreSQL {m['postgresql']} (fsync={m['postgresql_settings']['fsync']}), "
           f"Kafka {m['kafka']} (single node)",
           f"load average before {run['load_before']}, after {run['load_after']}; "
           + "; ".join(f"{phase} part: machine CPU {c['machine_busy']:.0%} busy, this process "
                       f"{c['bench_process_share_of_machine']:.0%}"
                       for phase, c in run.get("cpu", {}).items())
           + " (the rest: other processes on the same cores — the services under test, "
           "PostgreSQL, Kafka, other people's tests)", "",
           "## Throughput (events/s) next to its ceiling", "",
           "| measured | events/s | ceiling | events/s | of ceiling |", "|---|--:|---|--:|--:|"]
    for name, value, ceiling, ceiling_value in throughput_rows(t):
        out.append(f"| {name} | {_n(value)} | {ceiling} | {_n(ceiling_value)} | "
                   f"{_ratio(value, ceiling_value)} |")
    size = t["record_size"]
    out += ["", f"Events relayed: {t['relay']['rate']['count']:,} (the unit's BusinessEntityUpdated "
            f"and {CUSTOMERS} CustomerUpdated, then Invoice.Issued to those customers; "
            f"{t['relay']['batches']} batches of ≤{t['relay']['batch_size']}); one invoice's record = "
            f"{size['key']} B key + {size['value']} B value + {size['headers']} B headers "
            f"= {size['total']} B (the perf tool's --record-size).",
            f"Setup append (100 invoices per transaction): {_n(t['fill']['per_second'])} events/s.",
            "", "### Where the relay's time goes (each part alone, same events)", "",
            "| part | events/s | µs/event |", "|---|--:|--:|"]
    parts = {"relay, all together": t["relay"]["rate"], **t["relay_breakdown"]}
    for name, rate in parts.items():
        per = rate["per_second"]
        out.append(f"| {name} | {_n(per)} | {_n(1e6 / per if per else None, 1)} |")
    summed = sum(1e6 / r["per_second"] for r in t["relay_breakdown"].values() if r["per_second"])
    out.append(f"| sum of the parts | {_n(1e6 / summed if summed else None)} | {_n(summed, 1)} |")
    out += _invoicing_markdown(t, lat)
    agg = t.get("replay", {}).get("aggregate")
    if agg:
        out += ["", "### Aggregate replay and `issue_invoice`", "",
                f"Replaying the full history of one InvoiceNumbers aggregate "
                f"({agg['aggregate_events']:,} events, no snapshot): "
                f"{agg['replay_seconds'] * 1000:,.0f} ms ({_n(agg['replay_events_per_second'])} "
                f"events/s). `issue_invoice` (in process, median; loads it from a snapshot): "
                f"{agg['issue_invoice_ms_fresh_unit']:.1f} ms in a fresh business unit, "
                f"{agg['issue_invoice_ms_after_n_invoices']:.1f} ms after "
                f"{agg['aggregate_events'] - 1:,} invoices."]
    if lat:
        out += _latency_markdown(lat)
    if results.get("plot"):
        out += ["", f"Plot: {results['plot']}"]
    return "\n".join(out) + "\n"


def _invoicing_markdown(t: dict[str, Any], lat: dict[str, Any] | None) -> list[str]:
    """Invoices issued per second, through the API and in process, beside the bare append
    ceiling; documents rendered per second (issue 7)."""
    bare = _rate(t["ceilings"].get("bare_eventsourcing_append"))
    api = (lat or {}).get("bursts", {}).get("invoicing")
    rows = [
        (f"invoices through the API, {api['concurrency']} in flight" if api
         else "invoices through the API (--skip-latency: not run)", api["per_second"] if api else None),
        ("invoices in process (`issue_invoice`, one at a time)", _rate(t.get("issue_invoice"))),
    ]
    out = ["", "## Invoicing", "",
           "| measured | per second | ceiling: bare eventsourcing append, events/s | of ceiling |",
           "|---|--:|--:|--:|"]
    for name, value in rows:
        out.append(f"| {name} | {_n(value)} | {_n(bare)} | {_ratio(value, bare)} |")
    d = t.get("documents")
    if d:
        out += ["", "| document | per second |", "|---|--:|",
                f"| invoice PDF (core fonts: every Danish text) | {_n(d['pdf_per_second'])} |",
                f"| invoice PDF, Unicode font embedded | {_n(d['pdf_unicode_font_per_second'])} |",
                f"| Peppol BIS 3 UBL invoice | {_n(d['ubl_per_second'])} |",
                f"| UBL invoice, rendered and validated against the UBL 2.1 XSD | "
                f"{_n(d['ubl_validated_per_second'])} |"]
    return out


def _latency_markdown(lat: dict[str, Any]) -> list[str]:
    single = lat["single_cases"]
    out = ["", "## HTTP command → read model (five processes, one case at a time)", "",
           f"Polling every {lat['poll_ms']:.0f} ms, so figures are ± that.", "",
           "| step | n | p50 ms | p99 ms | max ms |", "|---|--:|--:|--:|--:|"]
    for step, s in single["steps_ms"].items():
        out.append(f"| {step} | {s['n']} | {_n(s['p50'])} | {_n(s['p99'])} | {_n(s['max'])} |")
    for i, case in enumerate(single.get("warmup_steps_ms", [])):
        out += ["", f"Warm-up case {i + 1} (not counted; first use after start), ms per step in "
                "the order above: " + " / ".join(f"{ms:,.0f}" for ms in case.values())]
    out += ["", "### HTTP command latency, unloaded (one at a time)", "",
            "| service | n | p50 ms | p99 ms | sequential commands/s |", "|---|--:|--:|--:|--:|"]
    for svc, s in single["commands_ms"].items():
        out.append(f"| {svc} | {s['n']} | {_n(s['p50'], 1)} | {_n(s['p99'], 1)} | "
                   f"{_n(1000 / s['mean'] if s['mean'] else None)} |")
    if single["failures"]:
        out += ["", "Failed cases: " + "; ".join(single["failures"])]
    out += ["", "### Commands/s per service, concurrent burst", "",
            "| service | commands | concurrency | commands/s | p50 ms | p99 ms | statuses | "
            "effects visible after | effects/s |", "|---|--:|--:|--:|--:|--:|---|--:|--:|"]
    for svc, b in lat["bursts"].items():
        d = b["drain"]
        drained = (f"{d['seconds']:.1f} s" if "seconds" in d
                   else f"timeout ({d['seen']}/{d['expected']})")
        out.append(f"| {svc} | {b['commands']} | {b['concurrency']} | {_n(b['per_second'])} | "
                   f"{_n(b['latency_ms']['p50'], 1)} | {_n(b['latency_ms']['p99'], 1)} | "
                   f"{', '.join(f'{k}×{v}' for k, v in b['statuses'].items())} | {drained} | "
                   f"{_n(d.get('per_second'))} |")
    out.append("accounting-sync takes no commands; its read side is in the step table above.")
    return out


def write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")


def plot(results: dict[str, Any], path: Path) -> str | None:
    """A PNG of the throughput table and the step latencies; None if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = [(f"{a}\nvs {c}", v, cv) for a, v, c, cv in throughput_rows(results["throughput"])]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 10))
    ys = range(len(rows))
    top.barh([y + 0.2 for y in ys], [r[1] or 0 for r in rows], 0.4, label="measured")
    top.barh([y - 0.2 for y in ys], [r[2] or 0 for r in rows], 0.4, label="ceiling")
    top.set_yticks(list(ys), [r[0] for r in rows], fontsize=7)
    top.set_xscale("log")
    top.set_xlabel("events/s (log scale)")
    top.invert_yaxis()
    top.legend()
    lat = results.get("latency")
    if lat:
        steps = lat["single_cases"]["steps_ms"]
        names = list(steps)
        bottom.barh([y + 0.2 for y in range(len(names))], [steps[n]["p50"] for n in names], 0.4,
                    label="p50")
        bottom.barh([y - 0.2 for y in range(len(names))], [steps[n]["p99"] for n in names], 0.4,
                    label="p99")
        bottom.set_yticks(list(range(len(names))), names, fontsize=7)
        bottom.set_xlabel("ms, HTTP command → read model")
        bottom.invert_yaxis()
        bottom.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)
