"""Typed, path-aware reading of a parsed TOML document.

Every accessor names the file and the dotted field on failure and says what is allowed, so
a bad scenario file is fixed from the message alone.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from typing import Any

from simulator.errors import ScenarioError

__all__ = ["Table"]

_MISSING: Any = object()


def _type_name(value: object) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a float",
        str: "a string",
        list: "an array",
        dict: "a table",
        dt.date: "a date",
        dt.datetime: "a date-time",
        dt.time: "a time",
    }.get(type(value), type(value).__name__)


class Table:
    """A TOML table with the file it came from and its dotted path inside the file."""

    __slots__ = ("data", "file", "path", "used")

    def __init__(self, data: Mapping[str, Any], file: str, path: str = "") -> None:
        self.data = data
        self.file = file
        self.path = path
        self.used: set[str] = set()

    # -- errors ---------------------------------------------------------------------------
    def field(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str | None, message: str) -> ScenarioError:
        where = self.field(key) if key is not None else (self.path or "top level")
        return ScenarioError(f"{self.file}: field {where!r}: {message}")

    def check_keys(self, allowed: Iterable[str], required: Iterable[str] = ()) -> None:
        """Reject keys outside ``allowed`` and missing ``required`` keys."""
        allowed = tuple(allowed)
        for key in self.data:
            if key not in allowed:
                raise self.error(
                    key, f"unknown key; allowed keys here: {', '.join(sorted(allowed))}"
                )
        for key in required:
            if key not in self.data:
                raise self.error(key, "required field is missing")

    def has(self, key: str) -> bool:
        return key in self.data

    def names(self) -> list[str]:
        return list(self.data)

    # -- accessors ------------------------------------------------------------------------
    def _raw(self, key: str, default: Any) -> Any:
        if key in self.data:
            return self.data[key]
        if default is _MISSING:
            raise self.error(key, "required field is missing")
        return default

    def table(self, key: str, *, default: Any = _MISSING) -> Table | None:
        value = self._raw(key, default)
        if key not in self.data:
            return None if value is None else Table(value, self.file, self.field(key))
        if not isinstance(value, dict):
            raise self.error(key, f"expected a table, got {_type_name(value)}")
        return Table(value, self.file, self.field(key))

    def get_str(
        self, key: str, *, default: Any = _MISSING, choices: Iterable[str] | None = None
    ) -> Any:
        value = self._raw(key, default)
        if key not in self.data:
            return value
        if not isinstance(value, str):
            raise self.error(key, f"expected a string, got {_type_name(value)}")
        if choices is not None:
            options = tuple(choices)
            if value not in options:
                raise self.error(key, f"{value!r} is not allowed; expected one of {options}")
        return value

    def get_float(
        self,
        key: str,
        *,
        default: Any = _MISSING,
        ge: float | None = None,
        gt: float | None = None,
        le: float | None = None,
        lt: float | None = None,
    ) -> Any:
        value = self._raw(key, default)
        if key not in self.data:
            return value
        return self.check_number(key, value, ge=ge, gt=gt, le=le, lt=lt)

    def get_int(
        self, key: str, *, default: Any = _MISSING, ge: int | None = None, le: int | None = None
    ) -> Any:
        value = self._raw(key, default)
        if key not in self.data:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected an integer, got {_type_name(value)}")
        if ge is not None and value < ge:
            raise self.error(key, f"{value} is not allowed; expected an integer >= {ge}")
        if le is not None and value > le:
            raise self.error(key, f"{value} is not allowed; expected an integer <= {le}")
        return value

    def check_number(
        self,
        key: str,
        value: Any,
        *,
        ge: float | None = None,
        gt: float | None = None,
        le: float | None = None,
        lt: float | None = None,
    ) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"expected a number, got {_type_name(value)}")
        x = float(value)
        if not math.isfinite(x):
            raise self.error(key, f"{value!r} is not allowed; expected a finite number")
        bounds = []
        if ge is not None:
            bounds.append(f">= {ge}")
        if gt is not None:
            bounds.append(f"> {gt}")
        if le is not None:
            bounds.append(f"<= {le}")
        if lt is not None:
            bounds.append(f"< {lt}")
        if (
            (ge is not None and x < ge)
            or (gt is not None and x <= gt)
            or (le is not None and x > le)
            or (lt is not None and x >= lt)
        ):
            raise self.error(
                key, f"{value!r} is not allowed; expected a number {' and '.join(bounds)}"
            )
        return x

    def date(self, key: str, *, default: Any = _MISSING) -> Any:
        value = self._raw(key, default)
        if key not in self.data:
            return value
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
        raise self.error(key, f"expected a date (2024-06-17), got {_type_name(value)} {value!r}")

    def str_list(self, key: str, *, default: Any = _MISSING, nonempty: bool = True) -> Any:
        value = self._raw(key, default)
        if key not in self.data:
            return value
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list):
            raise self.error(
                key, f"expected a string or an array of strings, got {_type_name(value)}"
            )
        if nonempty and not value:
            raise self.error(key, "expected a non-empty array")
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise self.error(f"{key}[{i}]", f"expected a string, got {_type_name(item)}")
        return tuple(value)

    def float_list(
        self,
        key: str,
        *,
        default: Any = _MISSING,
        length: int | None = None,
        ge: float | None = None,
        gt: float | None = None,
        le: float | None = None,
    ) -> Any:
        value = self._raw(key, default)
        if key not in self.data:
            return value
        if not isinstance(value, list):
            raise self.error(key, f"expected an array of numbers, got {_type_name(value)}")
        if length is not None and len(value) != length:
            raise self.error(key, f"expected {length} numbers (one per factor), got {len(value)}")
        return tuple(
            self.check_number(f"{key}[{i}]", v, ge=ge, gt=gt, le=le) for i, v in enumerate(value)
        )

    def matrix(self, key: str, n: int) -> tuple[tuple[float, ...], ...]:
        value = self._raw(key, _MISSING)
        if not isinstance(value, list) or len(value) != n:
            got = f"{len(value)} rows" if isinstance(value, list) else _type_name(value)
            raise self.error(
                key, f"expected an {n} x {n} array of arrays (one row per factor), got {got}"
            )
        rows = []
        for i, row in enumerate(value):
            if not isinstance(row, list) or len(row) != n:
                got = f"{len(row)} numbers" if isinstance(row, list) else _type_name(row)
                raise self.error(f"{key}[{i}]", f"expected a row of {n} numbers, got {got}")
            rows.append(tuple(self.check_number(f"{key}[{i}][{j}]", v) for j, v in enumerate(row)))
        return tuple(rows)

    def knots(self, key: str) -> tuple[tuple[float, float], ...]:
        """An array of ``[hours, value]`` pairs with strictly increasing hours."""
        value = self._raw(key, _MISSING)
        if not isinstance(value, list) or not value:
            raise self.error(key, "expected a non-empty array of [hours, value] pairs")
        out: list[tuple[float, float]] = []
        for i, pair in enumerate(value):
            if not isinstance(pair, list) or len(pair) != 2:
                raise self.error(f"{key}[{i}]", "expected a pair [hours, value]")
            t = self.check_number(f"{key}[{i}][0]", pair[0], ge=0.0)
            v = self.check_number(f"{key}[{i}][1]", pair[1], gt=0.0)
            if out and t <= out[-1][0]:
                raise self.error(
                    f"{key}[{i}]", f"hours must increase strictly; {t} follows {out[-1][0]}"
                )
            out.append((t, v))
        return tuple(out)
