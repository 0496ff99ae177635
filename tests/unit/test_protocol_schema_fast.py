"""The generated fast paths of client validation give exactly the generic loop's answers.

A fast path only accepts; whatever it does not accept goes through the generic loop, so the two
must agree on every message the fast path accepts (same normalised dict), and every reject must
be the generic one. Both are compared here on the schema's examples and on hypothesis variations
of them: each field replaced by near-valid and invalid values, fields dropped, unknown ones added.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradingapp.protocol import schema
from tradingapp.protocol.messages import CLIENT_MESSAGES

FAST_TYPES = sorted(schema._CLIENT_FAST_PATHS)

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.sampled_from([0, 1, 2**63 - 1, 2**63, -(2**63), 10**40, 10**41]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=70),
    st.sampled_from(["", " ", "a b", "é", "\n", "0", "00", "42", "1.5", "x" * 64, "x" * 65, "9" * 19]),
    st.sampled_from(["buy", "sell", "limit", "market", "ioc", "fok", "stop_limit", "cancel_both"]),
    st.sampled_from([Decimal("1.5"), Decimal("NaN"), Decimal("1e50")]),
    st.lists(st.integers(), max_size=2),
    st.binary(max_size=4),
)


def _outcome(result: object) -> object:
    if isinstance(result, dict):
        return ("ok", result)
    assert isinstance(result, schema.ProtocolError)
    return ("error", result.reason, str(result), result.ref_type, result.request_id, result.field)


def _both(msg: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    fast = _outcome(schema.validate_client_message(copy.deepcopy(msg)))
    with monkeypatch.context() as m:
        m.setattr(schema, "_CLIENT_FAST_PATHS", {})
        generic = _outcome(schema.validate_client_message(copy.deepcopy(msg)))
    return fast, generic


def test_the_common_messages_have_a_fast_path() -> None:
    assert {"new_order", "cancel", "replace", "cancel_all"} <= set(FAST_TYPES)


@pytest.mark.parametrize("spec", [s for s in CLIENT_MESSAGES if s.type in FAST_TYPES], ids=lambda s: s.type)
def test_the_fast_path_accepts_every_example(spec: Any) -> None:
    msg = dict(spec.example)
    assert schema._CLIENT_FAST_PATHS[spec.type](msg) is True


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fast_and_generic_paths_agree(data: st.DataObject, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = data.draw(st.sampled_from([s for s in CLIENT_MESSAGES if s.type in FAST_TYPES]))
    msg: dict[Any, Any] = dict(spec.example)
    names = [f.name for f in spec.fields] + ["type", "nope"]
    for name in data.draw(st.lists(st.sampled_from(names), max_size=3)):
        if data.draw(st.booleans()):
            msg.pop(name, None)
        else:
            msg[name] = data.draw(values)
    fast, generic = _both(msg, monkeypatch)
    assert fast == generic
