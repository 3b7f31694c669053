"""A small typed validator for the JSON-like files diffcli reads (config.json, checkpoints).

A schema is built from a few specs (Int, Float, Str, Bool, List, Record, Mapping, AnyJson, Nullable);
`validate(spec, value, source)` checks a parsed value against it and raises one DiffcliError that names
the file and the field path: "config.json: image.size must be a whole number from 1 to 4096, got 'x'".

Values are checked, never rewritten, so a file read and written back is unchanged. Free-form blocks
(AnyJson) are still bounded in nesting depth, so no file can make a reader recurse without limit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from diffcli.checks import Bound
from diffcli.errors import DiffcliError

MAX_DEPTH = 32  # nesting levels any value may have (configs use 4)


class Invalid(Exception):
    """A value that does not fit its spec: where (a field path) and what is wrong."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path or 'the file'} {problem}")
        self.path = path
        self.problem = problem


def show(value: Any) -> str:
    """A short, readable rendering of a bad value for a message."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def child(path: str, key: Any) -> str:
    """The path of a field (`image.size`) or list item (`labels[3]`) below `path`."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


class Spec:
    """Checks one value; raises Invalid naming `path`."""

    what = "a value"

    def check(self, value: Any, path: str) -> None:
        raise NotImplementedError


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class Int(Spec):
    low: int
    high: int

    @property
    def what(self) -> str:  # type: ignore[override]
        return str(self.low) if self.low == self.high else f"a whole number from {self.low} to {self.high}"

    def check(self, value: Any, path: str) -> None:
        if not _is_int(value) or not self.low <= value <= self.high:
            raise Invalid(path, f"must be {self.what}, got {show(value)}")


@dataclass
class Float(Spec):
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    finite: bool = True  # False: NaN and infinities pass too (a diverged loss is still a loss)

    @property
    def what(self) -> str:  # type: ignore[override]
        if not self.finite:
            return "a number"
        if self.low is not None and self.high is not None:
            left, right = ("more than " if self.low_open else "from "), (" (not included)" if self.high_open else "")
            return f"a number {left}{self.low:g} to {self.high:g}{right}"
        if self.low is not None:
            return f"a number {'more than' if self.low_open else 'of at least'} {self.low:g}"
        return "a finite number"

    def check(self, value: Any, path: str) -> None:
        ok = (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and (math.isfinite(value) or not self.finite)
        )
        if ok and self.low is not None:
            ok = value > self.low if self.low_open else value >= self.low
        if ok and self.high is not None:
            ok = value < self.high if self.high_open else value <= self.high
        if not ok:
            raise Invalid(path, f"must be {self.what}, got {show(value)}")


@dataclass
class Str(Spec):
    choices: Sequence[str] | None = None
    max_length: int = 1000
    empty: bool = False

    @property
    def what(self) -> str:  # type: ignore[override]
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        return f"text of at most {self.max_length} characters" + ("" if self.empty else " (not empty)")

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, str) or len(value) > self.max_length or (not value and not self.empty):
            raise Invalid(path, f"must be {self.what}, got {show(value)}")
        if self.choices is not None and value not in self.choices:
            raise Invalid(path, f"must be {self.what}, got {show(value)}")


class Bool(Spec):
    what = "true or false"

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, bool):
            raise Invalid(path, f"must be {self.what}, got {show(value)}")


@dataclass
class Nullable(Spec):
    """`spec` or null."""

    spec: Spec

    @property
    def what(self) -> str:  # type: ignore[override]
        return f"{self.spec.what} or null"

    def check(self, value: Any, path: str) -> None:
        if value is not None:
            self.spec.check(value, path)


@dataclass
class List(Spec):
    item: Spec
    min_length: int = 0
    max_length: int = 10_000

    @property
    def what(self) -> str:  # type: ignore[override]
        if self.min_length == self.max_length:
            return f"a list of {self.min_length} ({self.item.what})"
        return f"a list of {self.min_length} to {self.max_length} items ({self.item.what})"

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, list) or not self.min_length <= len(value) <= self.max_length:
            raise Invalid(
                path,
                f"must be {self.what}, got {show(value) if not isinstance(value, list) else f'{len(value)} items'}",
            )
        for i, item in enumerate(value):
            self.item.check(item, child(path, i))


@dataclass
class Mapping(Spec):
    """An object with free keys (text) and values of one spec."""

    value: Spec
    max_length: int = 10_000
    what = "an object"

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, dict) or len(value) > self.max_length:
            raise Invalid(path, f"must be an object of at most {self.max_length} entries, got {show(value)}")
        for key, item in value.items():
            self.value.check(item, child(path, key))


@dataclass
class AnyJson(Spec):
    """Any JSON value nested at most `depth` levels (objects and lists)."""

    depth: int = MAX_DEPTH
    object_only: bool = False

    @property
    def what(self) -> str:  # type: ignore[override]
        return "an object" if self.object_only else "a JSON value"

    def check(self, value: Any, path: str) -> None:
        if self.object_only and not isinstance(value, dict):
            raise Invalid(path, f"must be an object, got {show(value)}")
        check_depth(value, path, self.depth)


@dataclass
class Field:
    """One field of a Record: its spec and whether it must be present."""

    spec: Spec
    required: bool = True


def optional(spec: Spec) -> Field:
    return Field(spec, required=False)


@dataclass
class Record(Spec):
    """An object with known fields. `extra`: the spec of fields not listed (None: refused).
    `rules`: cross-field checks run after the fields, each raising Invalid."""

    fields: dict[str, Field]
    extra: Spec | None = None
    rules: Sequence[Callable[[dict, str], None]] = field(default_factory=tuple)
    what = "an object"

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise Invalid(path, f"must be an object ({{...}}), got {show(value)}")
        for name, spec in self.fields.items():
            if name in value:
                spec.spec.check(value[name], child(path, name))
            elif spec.required:
                raise Invalid(child(path, name), "is missing")
        for name, item in value.items():
            if name in self.fields:
                continue
            if self.extra is None:
                known = ", ".join(self.fields)
                raise Invalid(path, f"has an unknown field {show(name)} (known: {known})")
            self.extra.check(item, child(path, name))
        for rule in self.rules:
            rule(value, path)


@dataclass
class Variant(Spec):
    """An object whose field `key` picks the Record that checks it (e.g. architecture.type)."""

    key: str
    options: dict[str, Spec]
    what = "an object"

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise Invalid(path, f"must be an object ({{...}}), got {show(value)}")
        if self.key not in value:
            raise Invalid(child(path, self.key), "is missing")
        choice = value[self.key]
        if not isinstance(choice, str) or choice not in self.options:
            raise Invalid(
                child(path, self.key), f"must be one of {', '.join(repr(o) for o in self.options)}, got {show(choice)}"
            )
        self.options[choice].check(value, path)


def bounded(bound: Bound) -> Spec:
    """The spec of a shared bound (checks.py), so a config file is held to the range every other door uses."""
    if bound.kind is int:
        return Int(int(bound.low), int(bound.high))  # type: ignore[arg-type]
    return Float(bound.low, bound.high, bound.low_open, bound.high_open)


def check_depth(value: Any, path: str, depth: int = MAX_DEPTH) -> None:
    """Raise Invalid when `value` nests objects/lists deeper than `depth` levels (iteratively: a deep
    value cannot exhaust the stack here)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            if level > depth:
                raise Invalid(path, f"nests deeper than {depth} levels")
            children: Iterable[Any] = item.values() if isinstance(item, dict) else item
            stack.extend((c, level + 1) for c in children)


def validate(spec: Spec, value: Any, source: str, hint: str | None = None) -> None:
    """Check `value` against `spec`; a DiffcliError "SOURCE: PATH PROBLEM" otherwise."""
    try:
        spec.check(value, "")
    except Invalid as exc:
        raise DiffcliError(f"{source}: {exc}", hint) from None


def fail(path: str, problem: str) -> NoReturn:
    """Raise Invalid (for Record rules)."""
    raise Invalid(path, problem)
