"""JSON body templates encoded straight to bytes: the same bytes as rendering the tree and
dumping it, for any body and any values."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.templates import compile_json, json_encoder

NAMES = ("a", "b", "c")
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=st.characters(exclude_characters="$"), max_size=8),  # no placeholder
)
strings = st.one_of(
    st.text(alphabet='xyz é"\\\n', max_size=6),
    st.sampled_from(NAMES).map(lambda n: "${" + n + "}"),  # typed: the value itself
    st.sampled_from(NAMES).map(lambda n: "id-${" + n + "}-" + n),  # text around it
)
keys = st.text(alphabet='kq"é', min_size=1, max_size=4)
bodies = st.recursive(
    st.one_of(scalars, strings),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)),
    max_leaves=12,
)
values = st.one_of(  # what JSON holds: integers within 64 bits
    scalars, st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3), st.dictionaries(keys, scalars)
)


@settings(max_examples=300, deadline=None)
@given(body=bodies, env=st.fixed_dictionaries({n: values for n in NAMES}))
def test_encoded_bytes_equal_the_rendered_tree_dumped(body: Any, env: dict[str, Any]) -> None:
    template = compile_json(body, "body")
    assert json_encoder(template)(env) == orjson.dumps(template.render(env))


def test_each_lists_and_constant_bodies() -> None:
    each = compile_json(
        {"batch": {"$each": "results", "$item": {"id": "${item.id}"}}, "n": 1}, "body"
    )
    env = {"results": [{"id": 1}, {"id": "x"}]}
    assert json_encoder(each)(env) == b'{"batch":[{"id":1},{"id":"x"}],"n":1}'
    constant = compile_json({"a": [1, "b", None]}, "body")
    assert json_encoder(constant)({}) == b'{"a":[1,"b",null]}'
