"""Billing configuration: prices per user type (R-SUB-2), recording price, notice days.

Amounts are written in euros, as strings or numbers (``per_attempt: "0.07"``), and held as
integer cents from the moment they are read. The defaults are the documents' price table.
A YAML file may hold only the ``billing:`` keys it wants to change::

    billing:
      prices:
        telemarketer: {per_attempt: "0.05"}
      recording_per_month: "5.00"
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from dialerd.billing.rules import BillingInputError, Prices, UserType, parse_money


def _euros(value: object) -> int:
    try:
        return parse_money(value)
    except BillingInputError as exc:
        raise ValueError(str(exc)) from None


Money = Annotated[int, BeforeValidator(_euros)]


class PriceRow(BaseModel):
    """One row of the R-SUB-2 table, in euros on input and cents once parsed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_attempt: Money | None = None
    month: Money
    quarter: Money
    year: Money

    def prices(self) -> Prices:
        return Prices(self.per_attempt, self.month, self.quarter, self.year)


_DOCUMENT_PRICES: dict[UserType, dict[str, str | None]] = {
    UserType.TELEMARKETER: {
        "per_attempt": "0.07",
        "month": "55.00",
        "quarter": "49.50",
        "year": "44.00",
    },
    UserType.OUTSIDE_SALES: {"month": "25.00", "quarter": "22.50", "year": "20.00"},
    UserType.INSIDE_SALES: {"month": "55.00", "quarter": "49.50", "year": "44.00"},
}


def _default_prices() -> dict[UserType, PriceRow]:
    return {t: PriceRow.model_validate(row) for t, row in _DOCUMENT_PRICES.items()}


class BillingConfig(BaseModel):
    """All the numbers the billing rules need from outside."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prices: dict[UserType, PriceRow] = Field(default_factory=_default_prices)
    # The documents price no recording (it is "beta"); free unless configured.
    recording_per_month: Money = 0
    renewal_notice_days: int = Field(default=3, ge=0, le=60)

    def prices_for(self, user_type: UserType) -> Prices:
        return self.prices[user_type].prices()


def config_from_mapping(data: dict[str, Any] | None, source: str = "<config>") -> BillingConfig:
    """Validate the ``billing:`` mapping; a partial price row overrides only its keys."""
    data = dict(data or {})
    rows = data.pop("prices", None) or {}
    if not isinstance(rows, dict):
        raise BillingInputError(f"{source}: billing.prices must be a mapping")
    merged: dict[str, Any] = {str(t): dict(r) for t, r in _DOCUMENT_PRICES.items()}
    for key, row in rows.items():
        if not isinstance(row, dict):
            raise BillingInputError(f"{source}: billing.prices.{key} must be a mapping")
        merged.setdefault(str(key), {}).update(row)
    try:
        return BillingConfig.model_validate({**data, "prices": merged})
    except ValidationError as exc:
        problems = "; ".join(
            f"billing.{'.'.join(str(p) for p in err['loc'])}: "
            + str(err["msg"]).removeprefix("Value error, ")
            for err in exc.errors()
        )
        raise BillingInputError(f"{source}: {problems}") from None


def load_config(path: str | Path | None) -> BillingConfig:
    """The ``billing:`` section of a YAML file, or the defaults when `path` is None."""
    if path is None:
        return BillingConfig()
    try:
        text = Path(path).read_text(encoding="utf-8")
        document = yaml.safe_load(text) or {}
    except OSError as exc:
        raise BillingInputError(f"{path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None)
        detail = f" ({problem})" if problem else ""
        raise BillingInputError(f"{path}{where}: not valid YAML{detail}") from None
    if not isinstance(document, dict):
        raise BillingInputError(f"{path}: expected a mapping at the top level")
    section = document.get("billing", {})
    if not isinstance(section, dict):
        raise BillingInputError(f"{path}: billing must be a mapping")
    return config_from_mapping(section, str(path))
