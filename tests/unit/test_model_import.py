"""The feature list uploaded with an imported model: JSON or text, refused with a reason otherwise."""

from __future__ import annotations

import pytest

from fraudlens.errors import ModelError
from fraudlens.model_import import parse_feature_list


@pytest.mark.parametrize(("data", "names"), [
    (b'["amount", "hour", "acct_count_1h"]', ["amount", "hour", "acct_count_1h"]),
    (b'{"features": ["a", "b"]}', ["a", "b"]),
    (b'{"feature_names": ["a"]}', ["a"]),
    (b"amount\nhour\n\n# a comment\nacct_count_1h\n", ["amount", "hour", "acct_count_1h"]),
    (b"\xef\xbb\xbfamount\r\nhour\r\n", ["amount", "hour"]),
    (b"amount, hour ,acct_count_1h\n", ["amount", "hour", "acct_count_1h"]),
    ("monto_año\n".encode(), ["monto_año"]),
])
def test_accepted_shapes(data, names):
    assert parse_feature_list(data, "f.txt") == names


@pytest.mark.parametrize(("data", "message"), [
    (b"", "features.json is empty"),
    (b"  \n# only a comment\n", "lists no feature names"),
    (b'["a", "b", "a"]', "'a' more than once"),
    (b'["a", 3]', "item 2 must be a non-empty name"),
    (b'{"columns": ["a"]}', "without a 'features' or 'feature_names' list"),
    (b'{"features": "a"}', "must hold a JSON list"),
    (b"[not json", "is not valid JSON"),
    (b"\xff\xfe\x00a", "is not UTF-8 text"),
    (b'a\n"b"\n', "line 2"),
])
def test_refused_with_the_file_named(data, message):
    with pytest.raises(ModelError, match=message) as info:
        parse_feature_list(data, "features.json")
    assert "features.json" in str(info.value)


def test_size_limits():
    with pytest.raises(ModelError, match="at most"):
        parse_feature_list(b"a" * ((1 << 20) + 1), "big.txt")
    with pytest.raises(ModelError, match="at most 10,000 are accepted"):
        parse_feature_list("\n".join(f"f{i}" for i in range(10_001)).encode(), "many.txt")
