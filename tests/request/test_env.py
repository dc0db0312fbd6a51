"""Request env rules: names, reserved names and the kernel's limit on one variable."""

from __future__ import annotations

import pytest

from cached.errors import InvalidRequest
from cached.request.spec import MAX_ENV_STRING_BYTES, Limits, check_env


def test_one_variable_over_max_arg_strlen_is_refused_naming_it() -> None:
    assert MAX_ENV_STRING_BYTES == 131072
    at_limit = "x" * (MAX_ENV_STRING_BYTES - len("BIG=") - 1)  # "BIG=" + value + NUL == 131072
    assert check_env({"BIG": at_limit}, Limits()) == {"BIG": at_limit}
    with pytest.raises(InvalidRequest) as e:
        check_env({"BIG": at_limit + "x"}, Limits())
    assert e.value.field == "env['BIG']" and "131072" in str(e.value)
    # Bytes, not characters: a multi-byte value is counted as UTF-8.
    with pytest.raises(InvalidRequest, match="env\\['WIDE'\\]"):
        check_env({"WIDE": "é" * (MAX_ENV_STRING_BYTES // 2)}, Limits())
    # The limit holds even when the total allowed for the env is larger.
    with pytest.raises(InvalidRequest, match="BIG"):
        check_env({"BIG": "x" * MAX_ENV_STRING_BYTES}, Limits(max_env_bytes=1 << 20))
