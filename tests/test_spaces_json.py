"""Spaces to JSON and back: every supported kind round-trips, nested; a hostile description is refused
with a ValueError naming the entry, before anything large is built."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from gymnasium import spaces

from rlarena.envs.spaces import MAX_DEPTH, MAX_FLAT_SIZE, MAX_SUBSPACES, space_from_json, space_to_json

IMAGE = spaces.Box(0, 255, shape=(3, 8, 8), dtype=np.uint8)
LEAVES = [
    spaces.Discrete(5),
    spaces.Discrete(3, start=-1),
    spaces.MultiDiscrete([2, 3, 4]),
    spaces.MultiDiscrete([[2, 3], [4, 5]]),
    spaces.MultiDiscrete([3, 4], start=[1, -2]),
    spaces.MultiBinary(6),
    spaces.MultiBinary([2, 3]),
    spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32),
    spaces.Box(np.array([-np.inf, 0.0]), np.array([np.inf, 1.0]), dtype=np.float64),
    spaces.Box(0, 10, shape=(2, 2), dtype=np.int64),
    IMAGE,
]
NESTED = [
    spaces.Dict({"observation": spaces.Box(-1, 1, (4,), np.float32), "action_mask": spaces.MultiBinary(2)}),
    spaces.Tuple([spaces.Discrete(2), spaces.MultiBinary([2, 2]), IMAGE]),
    spaces.Dict(
        {
            "image": IMAGE,
            "pair": spaces.Tuple([spaces.Discrete(4), spaces.Dict({"flags": spaces.MultiBinary(3)})]),
            "vector": spaces.Box(-5, 5, (3,), np.float32),
        }
    ),
    spaces.Tuple([spaces.Tuple([spaces.Discrete(2)])]),
]


def round_trip(space: spaces.Space) -> spaces.Space:
    return space_from_json(json.loads(json.dumps(space_to_json(space))))  # through text, as a file holds it


@pytest.mark.parametrize("space", LEAVES + NESTED, ids=str)
def test_every_kind_round_trips(space):
    back = round_trip(space)
    assert back == space
    assert type(back) is type(space)
    assert space_to_json(back) == space_to_json(space)
    assert back.contains(space.sample())


def test_multibinary_keeps_an_int_n_an_int():
    assert space_to_json(spaces.MultiBinary(4)) == {"type": "MultiBinary", "n": 4}
    assert space_to_json(spaces.MultiBinary([2, 3])) == {"type": "MultiBinary", "n": [2, 3]}
    assert round_trip(spaces.MultiBinary(4)).n == 4


def test_multidiscrete_without_start_is_written_as_before():
    assert space_to_json(spaces.MultiDiscrete([2, 3])) == {"type": "MultiDiscrete", "nvec": [2, 3]}


def test_nesting_up_to_max_depth_reads():
    space: spaces.Space = spaces.Discrete(2)
    for i in range(MAX_DEPTH):
        space = spaces.Dict({"x": space}) if i % 2 else spaces.Tuple([space])
    assert round_trip(space) == space


def nested(depth: int, kind: str = "Tuple") -> dict[str, Any]:
    data: dict[str, Any] = {"type": "Discrete", "n": 2}
    for _ in range(depth):
        data = {"type": kind, "spaces": [data] if kind == "Tuple" else {"x": data}}
    return data


HOSTILE = [
    ({"type": "MultiBinary", "n": 10**12}, "MultiBinary 'n' is 1000000000000"),
    ({"type": "MultiBinary", "n": [10**9, 10**9]}, "MultiBinary 'n' is \\[1000000000, 1000000000\\]"),
    ({"type": "MultiBinary", "n": [1] * 1000}, "at most 32"),
    ({"type": "MultiBinary", "n": 0}, "MultiBinary 'n' is 0"),
    ({"type": "MultiBinary", "n": [2, -1]}, "MultiBinary 'n'"),
    ({"type": "MultiBinary", "n": True}, "MultiBinary 'n' is True"),
    ({"type": "MultiBinary", "n": "4"}, "MultiBinary 'n' is '4'"),
    ({"type": "MultiBinary"}, "MultiBinary lacks 'n'"),
    ({"type": "MultiDiscrete", "nvec": [2**62] * 4}, "'nvec' must be"),  # a sum that overflows int64
    ({"type": "MultiDiscrete", "nvec": [2, 3], "start": [1]}, "'start' must be whole numbers shaped like"),
    ({"type": "MultiDiscrete", "nvec": [2, 3], "start": "x"}, "'start' must be a number"),
    ({"type": "Tuple", "spaces": {"a": {"type": "Discrete", "n": 2}}}, "Tuple 'spaces' must be a list"),
    ({"type": "Tuple"}, "Tuple lacks 'spaces'"),
    ({"type": "Tuple", "spaces": [{"type": "Discrete", "n": 2}, "Box"]}, "at \\[1\\]: expected an object"),
    ({"type": "Dict", "spaces": [{"type": "Discrete", "n": 2}]}, "Dict 'spaces' must be an object"),
    (
        {"type": "Dict", "spaces": {"a": {"type": "Tuple", "spaces": [{"type": "Box", "low": 0}]}}},
        "at a\\[0\\]: Box lacks 'high', 'dtype'",
    ),
    (
        {"type": "Dict", "spaces": {"a": {"type": "Dict", "spaces": {"b": {"type": "Discrete", "n": 0}}}}},
        "at a.b: Discrete 'n' is 0",
    ),
    (
        {"type": "Tuple", "spaces": [{"type": "MultiBinary", "n": [1024, 1024]}, {"type": "Discrete", "n": 2}]},
        "at \\[1\\]: 1048578 elements in all",
    ),
    (
        {"type": "Tuple", "spaces": [{"type": "Discrete", "n": 1}] * (MAX_SUBSPACES + 1)},
        f"more than {MAX_SUBSPACES} spaces",
    ),
    ({"type": "Tuple", "spaces": [{"type": "Text", "max_length": 5}]}, "at \\[0\\]: unknown space type 'Text'"),
    ([], "expected an object with a 'type'"),
    ({"type": 3}, "expected an object with a 'type'"),
]


@pytest.mark.parametrize("data, message", HOSTILE)
def test_hostile_descriptions_are_one_line_value_errors(data, message):
    with pytest.raises(ValueError, match=message) as info:
        space_from_json(data)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("unreadable space")


@pytest.mark.parametrize("kind", ["Tuple", "Dict"])
def test_deep_nesting_is_refused(kind):
    with pytest.raises(ValueError, match=f"{kind} spaces nested more than {MAX_DEPTH} deep"):
        space_from_json(nested(10_000, kind))  # deeper than Python's recursion limit: refused at MAX_DEPTH


def test_nesting_one_past_max_depth_is_refused():
    space_from_json(nested(MAX_DEPTH))
    with pytest.raises(ValueError, match="nested more than"):
        space_from_json(nested(MAX_DEPTH + 1))


def test_a_long_key_is_shortened_in_the_message():
    key = "k" * 10_000
    with pytest.raises(ValueError) as info:
        space_from_json({"type": "Dict", "spaces": {key: {"type": "Foo"}}})
    assert len(str(info.value)) < 300


def test_flat_size_bound_is_exact():
    space_from_json({"type": "MultiBinary", "n": [1024, 1024]})
    assert MAX_FLAT_SIZE == 1024 * 1024
    with pytest.raises(ValueError, match="MultiBinary 'n'"):
        space_from_json({"type": "MultiBinary", "n": [1024, 1025]})


def test_unsupported_space_cannot_be_written():
    with pytest.raises(TypeError, match="MultiBinary, Dict or Tuple"):
        space_to_json(spaces.Text(5))
