"""Authentication before anything else (issue 5, part 3), over real HTTP against OS processes.

Every request under /v1 is authenticated before idempotency, body parsing or any route runs:
an anonymous request is a 401 whatever else is wrong with it, and its body is never read; a
revoked key gets nothing, not even a stored response replayed. Bodies are capped
(`MAX_BODY_BYTES`) before they are read in full. `saldo keys revoke` takes effect at once where
requests are served (PostgreSQL NOTIFY), and within seconds in embedded mode (the short key
cache). Roles: operator and finance may send commands, auditor may only read, admin may all.

Raw sockets are used where a client library would send the whole body before reading the answer:
a server that waited for the body would never answer those requests.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from saldo_platform import cli
from saldo_platform.http.auth import MAX_BODY_BYTES, ApiKeys
from tests.infrastructure import Servers
from tests.scenarios import register_customer, set_up_business_unit
from tests.support import (
    ROOT,
    SALDO,
    Saldo,
    create_key,
    distributed_with_keys,
    eventually,
)

MiB = 1024 * 1024
INVOICE: dict[str, Any] = {"customer_id": "cust-1", "currency": "DKK", "due_date": "2026-12-31",
                           "lines": [{"description": "Magazine, 12 months", "amount": 49900}]}

_keys: ApiKeys  # the module's key store (the CLI's own code), see `saldo`


@pytest.fixture(scope="module")
async def saldo(infra: Servers, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Saldo]:
    """Invoicing alone, distributed: every guarantee here is the HTTP layer's, shared by all."""
    global _keys
    async with distributed_with_keys(infra.database_url, infra.kafka_bootstrap,
                                     tmp_path_factory.mktemp("authentication"),
                                     ("invoicing",)) as (running, _keys):
        yield running


async def new_unit(saldo: Saldo, roles: str = "admin") -> str:
    """A fresh business unit with a key holding `roles`, set up by its admin the way an operator
    does before invoicing: the business entity and customer `cust-1` (rules M4, C1)."""
    unit = f"auth-{uuid.uuid4().hex[:8]}"
    saldo.keys[unit] = await _keys.create(unit, ["admin"], f"set-up key for {unit}")
    await set_up_business_unit(saldo, unit)
    await register_customer(saldo, unit, INVOICE["customer_id"])
    if roles != "admin":
        saldo.keys[unit] = await _keys.create(unit, roles.split(","), f"test key for {unit}")
    return unit


def key_id(key: str) -> str:
    return key.split("_")[1]


def assert_problem(response: httpx.Response | tuple[int, dict[str, str], bytes], status: int) -> None:
    if isinstance(response, httpx.Response):
        response = (response.status_code, dict(response.headers), response.content)
    got, headers, body = response
    assert got == status, (got, body[:500])
    assert headers["content-type"].startswith("application/problem+json"), headers
    if status == 401:
        assert headers["www-authenticate"] == "Bearer"


async def invoices_of(saldo: Saldo, unit: str) -> list[dict[str, Any]]:
    response = await saldo.get("invoicing", "/v1/invoices", unit)
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


# Raw HTTP/1.1, to send a head and only part of a body ------------------------------------------

async def send_head(saldo: Saldo, path: str,
                    headers: dict[str, str]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    url = httpx.URL(saldo.base_urls["invoicing"] + path)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    head = [f"POST {url.raw_path.decode()} HTTP/1.1", f"Host: {url.host}:{url.port}",
            "Content-Type: application/json", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    writer.write("\r\n".join(head).encode())
    await writer.drain()
    return reader, writer


async def read_response(reader: asyncio.StreamReader,
                        timeout: float = 20) -> tuple[int, dict[str, str], bytes]:
    """The server's answer; a timeout means it is still waiting for the rest of the body."""
    async def read() -> tuple[int, dict[str, str], bytes]:
        status = int((await reader.readline()).split()[1])
        headers = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers, await reader.readexactly(int(headers.get("content-length", 0)))

    try:
        return await asyncio.wait_for(read(), timeout)
    except TimeoutError:
        raise AssertionError(f"no answer in {timeout}s: the server waits to read the body") from None


# 1. Authentication first -----------------------------------------------------------------------

async def test_no_api_key_is_401_before_anything_else(saldo: Saldo) -> None:
    """Without a key: 401, not the 400 for the missing Idempotency-Key, nor a 422 for the body."""
    for headers in ({}, {"Authorization": "Bearer sk_000000000000_unknown"},
                    {"Authorization": f"Basic {saldo.keys['bu_a']}"}):
        for body in (INVOICE, {"not": "an invoice"}):
            response = await saldo.client.post(saldo.base_urls["invoicing"] + "/v1/invoices",
                                               json=body, headers=headers)
            assert_problem(response, 401)
    response = await saldo.client.get(saldo.base_urls["invoicing"] + "/v1/invoices")
    assert_problem(response, 401)
    for open_path in ("/health", "/docs", "/openapi.json"):
        response = await saldo.client.get(saldo.base_urls["invoicing"] + open_path)
        assert response.status_code == 200, open_path


async def test_an_anonymous_20_mb_body_is_refused_without_being_read(saldo: Saldo) -> None:
    """The head announces 20 MB; only 64 KiB of it is ever sent. The 401 comes anyway."""
    reader, writer = await send_head(saldo, "/v1/invoices", {
        "Content-Length": str(20 * MiB), "Idempotency-Key": str(uuid.uuid4())})
    try:
        writer.write(b"x" * 65536)
        await writer.drain()
        assert_problem(await read_response(reader), 401)
    finally:
        writer.close()


# 2. Body size cap -------------------------------------------------------------------------------

async def test_a_body_over_the_cap_is_413_and_writes_nothing(saldo: Saldo) -> None:
    unit = await new_unit(saldo)
    auth = {"Authorization": f"Bearer {saldo.keys[unit]}"}
    idempotency_key = str(uuid.uuid4())

    # Announced too large: refused from the head alone, none of the body sent.
    reader, writer = await send_head(saldo, "/v1/invoices", {
        **auth, "Idempotency-Key": idempotency_key, "Content-Length": str(MAX_BODY_BYTES + 1)})
    try:
        assert_problem(await read_response(reader), 413)
    finally:
        writer.close()

    # Chunked, so its size is unknown until read: the server stops at the cap. The body never
    # ends, so a server reading it all would never answer.
    reader, writer = await send_head(saldo, "/v1/invoices", {
        **auth, "Idempotency-Key": idempotency_key, "Transfer-Encoding": "chunked"})

    async def stream() -> None:
        chunk = b"x" * 65536
        for _ in range(8 * MiB // len(chunk)):
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()

    streaming = asyncio.create_task(stream())
    try:
        assert_problem(await read_response(reader), 413)
    finally:
        streaming.cancel()
        writer.close()

    assert await invoices_of(saldo, unit) == []
    # Nothing was claimed either: the same Idempotency-Key now issues the invoice.
    issued = await saldo.post("invoicing", "/v1/invoices", INVOICE, unit, key=idempotency_key)
    assert issued.status_code == 201, issued.text
    assert "idempotent-replayed" not in issued.headers
    # The largest invoice the API accepts (500 lines of 500 characters) is well inside the cap.
    largest = {**INVOICE, "lines": [{"description": "d" * 500, "amount": 1}] * 500}
    assert len(httpx.Request("POST", "/", json=largest).content) < MAX_BODY_BYTES
    response = await saldo.post("invoicing", "/v1/invoices", largest, unit)
    assert response.status_code == 201, response.text


# 3. Revocation ----------------------------------------------------------------------------------

def saldo_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(SALDO + list(args), env=env, capture_output=True, text=True, cwd=ROOT)


async def test_a_revoked_key_gets_no_stored_response_replayed(saldo: Saldo) -> None:
    unit = await new_unit(saldo)
    key = str(uuid.uuid4())
    first = await saldo.post("invoicing", "/v1/invoices", INVOICE, unit, key=key)
    assert first.status_code == 201, first.text
    replayed = await saldo.post("invoicing", "/v1/invoices", INVOICE, unit, key=key)
    assert replayed.headers.get("idempotent-replayed") == "true"  # stored, and replayed while valid

    done = await asyncio.to_thread(saldo_cli, saldo.env, "keys", "revoke", key_id(saldo.keys[unit]))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"revoked {key_id(saldo.keys[unit])}"

    again = await saldo.post("invoicing", "/v1/invoices", INVOICE, unit, key=key)
    assert_problem(again, 401)
    assert "idempotent-replayed" not in again.headers
    assert_problem(await saldo.get("invoicing", "/v1/invoices", unit), 401)


async def test_a_revocation_is_refused_by_the_next_request(
        saldo: Saldo, monkeypatch: pytest.MonkeyPatch) -> None:
    """Revoked while the service has the key cached: the very next request is a 401 (NOTIFY).

    `saldo keys revoke` runs in this process (`saldo_platform.cli.main`, the console script's
    own function) so that it takes milliseconds, well inside the key cache's lifetime: only the
    notification can make the next request fail.
    """
    unit = await new_unit(saldo)
    for name, value in saldo.env.items():
        if name.startswith("SALDO_"):
            monkeypatch.setenv(name, value)
    assert (await saldo.get("invoicing", "/v1/invoices", unit)).status_code == 200  # now cached

    def revoke() -> object:
        with pytest.raises(SystemExit) as exited:
            cli.main(["keys", "revoke", key_id(saldo.keys[unit])])
        return exited.value.code

    assert await asyncio.to_thread(revoke) == 0
    assert_problem(await saldo.get("invoicing", "/v1/invoices", unit), 401)


async def test_embedded_a_revocation_takes_effect_within_seconds(embedded: Saldo) -> None:
    """SQLite has no NOTIFY: the key cache's short lifetime bounds how long a revoked key works."""
    assert (await embedded.get("invoicing", "/v1/invoices")).status_code == 200  # now cached
    done = await asyncio.to_thread(saldo_cli, embedded.env, "keys", "revoke",
                                   key_id(embedded.keys["bu_a"]))
    assert done.returncode == 0, done.stderr

    async def refused() -> bool:
        return (await embedded.get("invoicing", "/v1/invoices")).status_code == 401

    await eventually(refused, timeout=5, what="the revoked key to be refused")
    assert (await embedded.get("invoicing", "/v1/invoices", "bu_b")).status_code == 200


async def test_keys_list_shows_every_key_without_its_secret(saldo: Saldo) -> None:
    unit = f"list-{uuid.uuid4().hex[:8]}"
    env = saldo.env
    operator = await asyncio.to_thread(create_key, env, unit, "operator,finance")
    auditor = await asyncio.to_thread(create_key, env, unit, "auditor")
    assert saldo_cli(env, "keys", "revoke", key_id(auditor)).returncode == 0

    listed = await asyncio.to_thread(saldo_cli, env, "keys", "list", "--business-unit", unit)
    assert listed.returncode == 0, listed.stderr
    header, *rows = [line.split() for line in listed.stdout.strip().splitlines()]
    assert header == ["key", "id", "business", "unit", "roles", "name", "created", "revoked"]
    by_id = {row[0]: row for row in rows}
    assert by_id.keys() == {key_id(operator), key_id(auditor)}
    assert by_id[key_id(operator)][1:3] == [unit, "finance,operator"]
    assert by_id[key_id(operator)][-1] == "-"  # not revoked
    assert by_id[key_id(auditor)][1:3] == [unit, "auditor"]
    assert by_id[key_id(auditor)][-1].startswith("20")  # revoked at an ISO instant
    for key in (operator, auditor):
        assert key.split("_", 2)[2] not in listed.stdout  # never a secret

    everything = await asyncio.to_thread(saldo_cli, env, "keys", "list")
    assert key_id(operator) in everything.stdout and key_id(saldo.keys["bu_a"]) in everything.stdout
    unknown = await asyncio.to_thread(saldo_cli, env, "keys", "revoke", "000000000000")
    assert unknown.returncode == 1 and "no API key" in unknown.stderr


# 4. Roles ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("roles", "may_command"), [
    ("operator", True), ("finance", True), ("admin", True), ("auditor", False)])
async def test_who_may_send_commands(saldo: Saldo, roles: str, may_command: bool) -> None:
    """Commands need operator or finance (admin passes every check); auditor reads only."""
    unit = await new_unit(saldo, roles)
    response = await saldo.post("invoicing", "/v1/invoices", INVOICE, unit)
    if may_command:
        assert response.status_code == 201, response.text
        assert response.json()["number"] == 1
        await eventually(lambda: invoices_of(saldo, unit), what="the invoice in the list")
    else:
        assert_problem(response, 403)
        assert await invoices_of(saldo, unit) == []  # it may read
        # Nothing was written: the unit's first invoice is still number 1 (gapless, rule I1).
        admin = await _keys.create(unit, ["admin"], "admin of the same unit")
        issued = await saldo.client.post(saldo.base_urls["invoicing"] + "/v1/invoices", json=INVOICE,
                                         headers={"Authorization": f"Bearer {admin}",
                                                  "Idempotency-Key": str(uuid.uuid4())})
        assert issued.status_code == 201 and issued.json()["number"] == 1, issued.text
