"""Strict parsing of the rotation_id path segment."""

from __future__ import annotations

import pytest

from backend.errors import BadRequestError
from backend.routes.rotation import parse_rotation_id


class TestParseRotationId:
    @pytest.mark.parametrize(("raw", "value"), [("1", 1), ("42", 42), ("2147483647", 2147483647), ("007", 7)])
    def test_accepts_positive_int4(self, raw: str, value: int) -> None:
        """Digits in 1..2147483647 parse."""
        assert parse_rotation_id(raw) == value

    @pytest.mark.parametrize(
        "raw",
        ["0", "-1", "abc", "", "12abc", "7.9", " 5", "2147483648", "99999999999999999999", "+5", "١٢"],
    )
    def test_rejects_everything_else_with_400(self, raw: str) -> None:
        """Anything that is not a plain in-range integer is a 400, never a 500."""
        with pytest.raises(BadRequestError) as info:
            parse_rotation_id(raw)
        assert info.value.status_code == 400
