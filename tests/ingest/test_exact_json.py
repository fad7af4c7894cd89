"""JSON that keeps integers of any size: orjson alone turns 2**70 into a float."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from metrics_source.ingest import exact_json

BIG = 2**70
BELOW_INT64 = -(2**63) - 1  # 19 digits: the shortest integer orjson reads as a float


def test_orjson_alone_loses_these_integers():
    # The reason for the module: if orjson ever keeps them, the extra pass can go.
    assert isinstance(orjson.loads(str(BIG)), float)
    assert isinstance(orjson.loads(str(BELOW_INT64)), float)


@pytest.mark.parametrize("number", [BIG, BELOW_INT64, 2**64 - 1, -(2**63), 10**40])
def test_integers_of_any_size_read_and_write_exactly(number):
    text = b'{"n": %d, "list": [%d, 1.5]}' % (number, number)
    value = exact_json.loads(text)
    assert value == {"n": number, "list": [number, 1.5]}
    assert type(value["n"]) is int
    assert exact_json.loads(exact_json.dumps(value)) == value
    assert exact_json.dumps(value) == b'{"n":%d,"list":[%d,1.5]}' % (number, number)


def test_a_long_run_of_digits_inside_a_string_reads_the_same():
    text = b'{"id": "12345678901234567890123", "n": 7, "x": 0.5}'
    assert exact_json.loads(text) == orjson.loads(text)
    assert exact_json.loads(text.decode()) == orjson.loads(text)


def test_malformed_json_is_refused_with_orjsons_error():
    with pytest.raises(orjson.JSONDecodeError):
        exact_json.loads(b'{"n": 12345678901234567890123')
    with pytest.raises(orjson.JSONDecodeError):
        exact_json.loads(b"[1e400]")  # infinity: the standard library would have taken it


def test_dumps_sorts_keys_on_request_either_way():
    assert exact_json.dumps({"b": 1, "a": 2}, sort_keys=True) == b'{"a":2,"b":1}'
    assert exact_json.dumps({"b": BIG, "a": 2}, sort_keys=True) == b'{"a":2,"b":%d}' % BIG


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def test_a_long_integer_nested_deeper_than_python_reads_is_read_as_orjson_reads_it():
    text = b"[" * 1000 + b"%d" % BIG + b"]" * 1000  # orjson reads 1,024 levels, json fewer
    value = exact_json.loads(text)
    for _ in range(1000):
        (value,) = value
    assert value == float(BIG)


@pytest.mark.parametrize("big_first", [True, False])
def test_a_large_integer_does_not_move_the_nesting_limit(big_first):
    # orjson writes 254 levels of lists and no more, wherever the large integer sits (before
    # the fix, with the integer first, 600 levels were written and stored).
    for depth, writable in ((254, True), (255, False), (600, False)):
        items = [BIG, _nested(depth - 2)]  # the outer list and the innermost empty one count
        value = items if big_first else items[::-1]
        if writable:
            assert exact_json.loads(exact_json.dumps(value)) == value
        else:
            with pytest.raises(orjson.JSONEncodeError, match="Recursion limit reached"):
                exact_json.dumps(value)


@pytest.mark.parametrize(
    "text",
    [b"[9999999999999999999]", b"[-999999999999999999]", b'["1234567890123456789"]'],
    ids=["19-digit", "18-digit-negative", "19-digit-string"],
)
def test_numbers_orjson_holds_are_not_read_twice(text, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("read again by the standard library")

    monkeypatch.setattr(json, "loads", refuse)
    assert exact_json.loads(text) == orjson.loads(text)


@pytest.mark.parametrize(
    "value",
    [
        {"s": "\ud800"},  # a lone surrogate, found by orjson
        {"n": BIG, "s": "\ud800"},  # found by the standard library, after the integer
        {"n": BIG, "deep": _nested(2000)},  # too deep for either
    ],
    ids=["surrogate", "surrogate-after-big-integer", "too-deep"],
)
def test_what_cannot_be_json_raises_orjsons_encode_error(value):
    with pytest.raises(orjson.JSONEncodeError):
        exact_json.dumps(value)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(blacklist_categories=("Cs",))),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_any_json_value_survives_a_round_trip(value):
    written = exact_json.dumps(value)
    assert exact_json.loads(written) == value
    assert json.loads(written) == value
