"""Small HTTP parts every service shares: the list cursor and If-Match."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from fastapi import HTTPException

from saldo_kernel.errors import PreconditionFailed
from saldo_platform.http.app import if_match
from saldo_platform.http.pages import decode_cursor, encode_cursor, sortable_time


def test_a_cursor_reads_back_the_time_and_id_it_was_made_from() -> None:
    moment = sortable_time(datetime(2026, 11, 20, 10, tzinfo=UTC))
    assert moment == "2026-11-20T10:00:00.000000Z"
    assert decode_cursor(encode_cursor(moment, "abc")) == (moment, "abc")


@pytest.mark.parametrize("made_up", [
    ["nope", "x"], ["2026-11-20", "x"], [1, "x"], ["2026-11-20T10:00:00.000000Z"], {"a": 1},
])
def test_a_cursor_we_did_not_make_is_refused(made_up: object) -> None:
    cursor = base64.urlsafe_b64encode(json.dumps(made_up).encode()).decode().rstrip("=")
    with pytest.raises(HTTPException) as refused:
        decode_cursor(cursor)
    assert refused.value.status_code == 400


def test_if_match_compares_strong_etags_only() -> None:
    assert if_match('"3"') == 3
    assert if_match(None) is None and if_match("*") is None
    for wrong in ('W/"3"', "three"):
        with pytest.raises(PreconditionFailed):
            if_match(wrong)
