"""What every command's JSON body must satisfy before it may become an event.

A body that passes validation is stored as an event and then written by every consumer into
PostgreSQL read models. What PostgreSQL cannot hold must therefore be refused here, with a 422,
and not discovered later by a consumer that dead-letters the event: a NUL character in a text
(PostgreSQL `TEXT` cannot store U+0000) or an amount beyond `BIGINT`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, model_validator

# 10^12 minor units (10 000 000 000.00 DKK) per amount: far above any real invoice, payment or
# refund, and 500 invoice lines of it still sum below 2^53, so every total stays an exact JSON
# number for any client (rule M1) and far inside PostgreSQL's BIGINT.
MAX_AMOUNT = 10**12



def _minor_units(value: int) -> int:
    """The bounds of every amount, refused in words naming the rule (a 422 an operator reads)."""
    if value <= 0:
        raise ValueError("must be greater than 0: an amount is a positive whole number of minor "
                         "units (øre, cents) (rule M1)")
    if value > MAX_AMOUNT:
        raise ValueError(f"must be less than or equal to {MAX_AMOUNT} minor units (rule M1)")
    return value


# The schema still says exclusiveMinimum 0 and maximum 10^12; the check is `_minor_units`.
MinorUnits = Annotated[StrictInt, AfterValidator(_minor_units), Field(
    description="integer minor units (øre, cents), no floats (rule M1)",
    json_schema_extra={"exclusiveMinimum": 0, "maximum": MAX_AMOUNT})]


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class RequestBody(BaseModel):
    """Base of every command body: unknown fields are refused, and so is U+0000 anywhere."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul_characters(cls, data: Any) -> Any:
        if _has_nul(data):
            raise ValueError("text must not contain the NUL character (U+0000)")
        return data
