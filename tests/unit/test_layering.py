"""Layering (docs/architecture.md): what each layer may import, read from the source itself.

The platform imports no service (it finds them through entry points); the shared kernel and
every domain model import nothing but the standard library, the `eventsourcing` domain base,
the kernel and their own package, so the rules can be read and tested without any I/O.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"saldo_invoicing", "saldo_payments", "saldo_refunds", "saldo_payouts", "saldo_accounting"}
# A domain is `domain.py`, or a `domain/` package whose modules all follow the same rule.
DOMAINS = sorted([*ROOT.glob("services/*/saldo_*/domain.py"), *ROOT.glob("services/*/saldo_*/domain/*.py")])


def imported(path: Path) -> set[str]:
    """Every module a source file imports, at any depth (also inside functions)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def top(module: str) -> str:
    return module.split(".")[0]


def test_the_platform_imports_no_service() -> None:
    for path in sorted((ROOT / "libs").rglob("*.py")):
        wrong = {m for m in imported(path) if top(m) in SERVICES}
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"


def test_the_kernel_imports_only_the_standard_library_and_the_event_sourcing_base() -> None:
    for path in sorted((ROOT / "libs/kernel").rglob("*.py")):
        wrong = {m for m in imported(path)
                 if top(m) not in sys.stdlib_module_names | {"saldo_kernel", "iso4217", "__future__"}
                 and m != "eventsourcing.domain"}
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"


@pytest.mark.parametrize("path", DOMAINS, ids=[str(p.relative_to(ROOT / "services")) for p in DOMAINS])
def test_a_domain_imports_nothing_but_the_event_sourcing_base_and_its_value_objects(path: Path) -> None:
    own = next(p.name for p in path.parents if p.name.startswith("saldo_"))
    wrong = {m for m in imported(path)
             if top(m) not in sys.stdlib_module_names | {"saldo_kernel", own, "__future__"}
             and m != "eventsourcing.domain"}
    assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"


def test_there_is_a_domain_per_service() -> None:
    assert {next(q.name for q in p.parents if q.name.startswith("saldo_")) for p in DOMAINS} == SERVICES
