"""
Typed views of user-data events: common fields by name, money as ``Decimal``.

Events stay Binance's dicts (the contract); these light wrappers only read them. Each keeps
the dict as ``raw`` (nothing is copied or hidden) and names the Binance key it reads in its
docstring. A field Binance did not send raises ``KeyError``; a Decimal field that is an empty
string reads as ``None`` where noted.

>>> update = OrderUpdate({"e": "ORDER_TRADE_UPDATE", "o": {"c": "a", "X": "FILLED",
...                       "z": "0.010", "ap": "50000.0", "rp": "0"}})
>>> update.status, update.filled_quantity, update.average_price
('FILLED', Decimal('0.010'), Decimal('50000.0'))
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Optional

__all__ = ["AccountUpdate", "AlgoUpdate", "Balance", "OrderUpdate", "Position", "typed"]


def _dec(value: Any) -> Decimal:
    return Decimal(str(value))


def _opt_dec(value: Any) -> Optional[Decimal]:
    return None if value in (None, "") else Decimal(str(value))


class _View:
    __slots__ = ("raw",)
    _type = ""

    def __init__(self, raw: dict[str, Any]) -> None:
        if not isinstance(raw, dict) or (self._type and raw.get("e") != self._type):
            kind = raw.get("e") if isinstance(raw, dict) else type(raw).__name__
            raise ValueError(f"{type(self).__name__} reads {self._type} events, not {kind!r}")
        self.raw = raw

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.raw!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _View) and type(other) is type(self) and other.raw == self.raw

    def __hash__(self) -> int:
        return id(self.raw)

    @property
    def event_time(self) -> int:
        """``E``: the event time, epoch ms (``int`` even where Binance sends a string)."""
        return int(self.raw["E"])

    @property
    def transaction_time(self) -> int:
        """``T``: the transaction time, epoch ms."""
        return int(self.raw["T"])


class OrderUpdate(_View):
    """An ``ORDER_TRADE_UPDATE`` (fields of ``o``)."""

    __slots__ = ()
    _type = "ORDER_TRADE_UPDATE"

    @property
    def _o(self) -> dict[str, Any]:
        return self.raw["o"]  # type: ignore[no-any-return]

    @property
    def symbol(self) -> str:
        """``o.s``"""
        return str(self._o["s"])

    @property
    def client_order_id(self) -> str:
        """``o.c``"""
        return str(self._o["c"])

    @property
    def order_id(self) -> int:
        """``o.i``"""
        return int(self._o["i"])

    @property
    def side(self) -> str:
        """``o.S``: BUY or SELL."""
        return str(self._o["S"])

    @property
    def order_type(self) -> str:
        """``o.o``: LIMIT, MARKET, ..."""
        return str(self._o["o"])

    @property
    def execution_type(self) -> str:
        """``o.x``: NEW, TRADE, CANCELED, EXPIRED, CALCULATED, AMENDMENT."""
        return str(self._o["x"])

    @property
    def status(self) -> str:
        """``o.X``: NEW, PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED, ..."""
        return str(self._o["X"])

    @property
    def quantity(self) -> Decimal:
        """``o.q``: the original quantity."""
        return _dec(self._o["q"])

    @property
    def price(self) -> Decimal:
        """``o.p``: the limit price (0 for MARKET)."""
        return _dec(self._o["p"])

    @property
    def average_price(self) -> Decimal:
        """``o.ap``: the average fill price."""
        return _dec(self._o["ap"])

    @property
    def filled_quantity(self) -> Decimal:
        """``o.z``: the accumulated filled quantity."""
        return _dec(self._o["z"])

    @property
    def last_filled_quantity(self) -> Decimal:
        """``o.l``: the quantity of this fill."""
        return _dec(self._o["l"])

    @property
    def last_filled_price(self) -> Decimal:
        """``o.L``: the price of this fill."""
        return _dec(self._o["L"])

    @property
    def realized_profit(self) -> Decimal:
        """``o.rp``: the realized profit of this trade."""
        return _dec(self._o["rp"])

    @property
    def commission(self) -> Optional[Decimal]:
        """``o.n``: the commission of this fill (``None`` when not sent)."""
        return _opt_dec(self._o.get("n"))

    @property
    def commission_asset(self) -> Optional[str]:
        """``o.N``"""
        value = self._o.get("N")
        return None if value is None else str(value)


class AlgoUpdate(_View):
    """An ``ALGO_UPDATE`` of a conditional order (fields of ``o``)."""

    __slots__ = ()
    _type = "ALGO_UPDATE"

    @property
    def _o(self) -> dict[str, Any]:
        return self.raw["o"]  # type: ignore[no-any-return]

    @property
    def symbol(self) -> str:
        """``o.s``"""
        return str(self._o["s"])

    @property
    def client_algo_id(self) -> str:
        """``o.caid``"""
        return str(self._o["caid"])

    @property
    def algo_id(self) -> int:
        """``o.aid``"""
        return int(self._o["aid"])

    @property
    def status(self) -> str:
        """``o.X``: NEW, TRIGGERING, TRIGGERED, FINISHED, CANCELED, REJECTED, EXPIRED."""
        return str(self._o["X"])

    @property
    def order_type(self) -> str:
        """``o.o``: STOP_MARKET, TAKE_PROFIT, ..."""
        return str(self._o["o"])

    @property
    def side(self) -> str:
        """``o.S``"""
        return str(self._o["S"])

    @property
    def quantity(self) -> Decimal:
        """``o.q``"""
        return _dec(self._o["q"])

    @property
    def trigger_price(self) -> Decimal:
        """``o.tp``"""
        return _dec(self._o["tp"])

    @property
    def order_id(self) -> Optional[int]:
        """``o.ai``: the id of the order placed at the trigger (``None`` before it)."""
        value = self._o.get("ai")
        return None if value in (None, "", 0, "0") else int(value)

    @property
    def reject_reason(self) -> str:
        """``o.rm``: why the trigger failed ("" when it did not)."""
        return str(self._o.get("rm") or "")


class Balance:
    """One ``ACCOUNT_UPDATE`` balance (``a.B[]``)."""

    __slots__ = ("raw",)

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    def __repr__(self) -> str:
        return f"Balance({self.raw!r})"

    @property
    def asset(self) -> str:
        """``a``"""
        return str(self.raw["a"])

    @property
    def wallet_balance(self) -> Decimal:
        """``wb``"""
        return _dec(self.raw["wb"])

    @property
    def cross_wallet_balance(self) -> Decimal:
        """``cw``"""
        return _dec(self.raw["cw"])

    @property
    def balance_change(self) -> Decimal:
        """``bc``: the change other than PnL and commission."""
        return _dec(self.raw["bc"])


class Position:
    """One ``ACCOUNT_UPDATE`` position (``a.P[]``; only changed positions are sent)."""

    __slots__ = ("raw",)

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    def __repr__(self) -> str:
        return f"Position({self.raw!r})"

    @property
    def symbol(self) -> str:
        """``s``"""
        return str(self.raw["s"])

    @property
    def amount(self) -> Decimal:
        """``pa``: negative for a short."""
        return _dec(self.raw["pa"])

    @property
    def entry_price(self) -> Decimal:
        """``ep``"""
        return _dec(self.raw["ep"])

    @property
    def unrealized_profit(self) -> Decimal:
        """``up``"""
        return _dec(self.raw["up"])

    @property
    def accumulated_realized(self) -> Decimal:
        """``cr``"""
        return _dec(self.raw["cr"])

    @property
    def margin_type(self) -> str:
        """``mt``: cross or isolated."""
        return str(self.raw["mt"])

    @property
    def position_side(self) -> str:
        """``ps``: BOTH, LONG or SHORT."""
        return str(self.raw["ps"])


class AccountUpdate(_View):
    """An ``ACCOUNT_UPDATE`` (fields of ``a``)."""

    __slots__ = ()
    _type = "ACCOUNT_UPDATE"

    @property
    def reason(self) -> str:
        """``a.m``: ORDER, FUNDING_FEE, DEPOSIT, ..."""
        return str(self.raw["a"]["m"])

    @property
    def balances(self) -> list[Balance]:
        """``a.B``"""
        return [Balance(b) for b in self.raw["a"].get("B", [])]

    @property
    def positions(self) -> list[Position]:
        """``a.P``"""
        return [Position(p) for p in self.raw["a"].get("P", [])]


_VIEWS: dict[str, type[_View]] = {
    "ORDER_TRADE_UPDATE": OrderUpdate,
    "ALGO_UPDATE": AlgoUpdate,
    "ACCOUNT_UPDATE": AccountUpdate,
}


def typed(event: dict[str, Any]) -> Any:
    """
    ``OrderUpdate``, ``AlgoUpdate`` or ``AccountUpdate`` for those event types; any other
    event (TRADE_LITE, ``bfsync.gap``, ...) is returned as it is.
    """
    view = _VIEWS.get(event.get("e", "")) if isinstance(event, dict) else None
    return view(event) if view is not None else event
