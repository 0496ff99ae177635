"""Reject and close reasons: one enum, grouped by the stage that decides them.

Modelled on exchange-core's ``CommandResultCode`` (auth, risk, matching groups). The wire form of
each member is its value, a stable snake_case code that clients may branch on; the default text is
what a person reads. Business outcomes are values, never exceptions: every stage returns one of
these codes plus a specific text.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """A stable, snake_case reason code (the enum value is the wire form)."""

    # -- protocol and session ------------------------------------------------------------------
    MALFORMED_MESSAGE = "malformed_message"
    FRAME_TOO_LARGE = "frame_too_large"
    UNKNOWN_MESSAGE_TYPE = "unknown_message_type"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    NOT_LOGGED_IN = "not_logged_in"
    ALREADY_LOGGED_IN = "already_logged_in"
    AUTH_FAILED = "auth_failed"
    RATE_LIMITED = "rate_limited"
    SLOW_CONSUMER = "slow_consumer"
    HEARTBEAT_TIMEOUT = "heartbeat_timeout"
    INTERNAL_ERROR = "internal_error"

    # -- order validation (symbol filters) ---------------------------------------------------
    UNKNOWN_SYMBOL = "unknown_symbol"
    INVALID_SIDE = "invalid_side"
    INVALID_ORDER_TYPE = "invalid_order_type"
    INVALID_PRICE = "invalid_price"
    INVALID_QUANTITY = "invalid_quantity"
    PRICE_OFF_TICK = "price_off_tick"
    QUANTITY_OFF_LOT = "quantity_off_lot"
    MISSING_PRICE = "missing_price"
    MISSING_STOP_PRICE = "missing_stop_price"
    QUANTITY_BELOW_MINIMUM = "quantity_below_minimum"
    QUANTITY_ABOVE_MAXIMUM = "quantity_above_maximum"
    NOTIONAL_BELOW_MINIMUM = "notional_below_minimum"
    INVALID_CLIENT_ORDER_ID = "invalid_client_order_id"

    # -- risk ------------------------------------------------------------------------------------
    INSUFFICIENT_FUNDS = "insufficient_funds"
    PRICE_OUT_OF_BAND = "price_out_of_band"
    TOO_MANY_OPEN_ORDERS = "too_many_open_orders"
    DUPLICATE_CLIENT_ORDER_ID = "duplicate_client_order_id"
    UNKNOWN_ACCOUNT = "unknown_account"

    # -- book ------------------------------------------------------------------------------------
    UNKNOWN_ORDER = "unknown_order"
    ORDER_NOT_OPEN = "order_not_open"
    POST_ONLY_WOULD_TAKE = "post_only_would_take"
    WOULD_TRIGGER_IMMEDIATELY = "would_trigger_immediately"
    QUANTITY_NOT_ABOVE_FILLED = "quantity_not_above_filled"
    REPLACE_NOT_ALLOWED = "replace_not_allowed"
    ORDER_CHANGED = "order_changed"
    DUPLICATE_ORDER_ID = "duplicate_order_id"

    # -- why a live order ended without a client cancel (reported on canceled/expired) ------
    CANCELED_BY_USER = "canceled_by_user"
    IOC_REMAINDER = "ioc_remainder"
    FOK_NOT_FILLABLE = "fok_not_fillable"
    NO_LIQUIDITY = "no_liquidity"
    SELF_TRADE_PREVENTION = "self_trade_prevention"
    BUDGET_EXHAUSTED = "budget_exhausted"

    @property
    def code(self) -> str:
        """The wire code (same as ``value``; reads better at call sites)."""
        return self.value
