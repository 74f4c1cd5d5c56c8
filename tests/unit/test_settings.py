"""Settings read from the environment refuse values an operator could not have meant."""

from __future__ import annotations

import pytest

from saldo_platform.settings import Settings


def test_the_idempotency_takeover_is_a_positive_number_of_seconds() -> None:
    assert Settings.from_env({}).idempotency_takeover_seconds == 10.0
    quick = Settings.from_env({"SALDO_IDEMPOTENCY_TAKEOVER_SECONDS": "1.5"})
    assert quick.idempotency_takeover_seconds == 1.5
    for wrong in ("0", "-3", "ten", "7200", "nan"):
        with pytest.raises(ValueError, match="SALDO_IDEMPOTENCY_TAKEOVER_SECONDS"):
            Settings.from_env({"SALDO_IDEMPOTENCY_TAKEOVER_SECONDS": wrong})
