"""Each option declared once: its name, default, allowed values and help text.

A request is a keyword-only dataclass whose fields are declared with `param(...)`. From that one
declaration come

- the command-line option (cli/params.py builds Typer's option from it: flags, metavar, help, panel,
  completion),
- the Python keyword (api.py's functions take the request's fields, with the same defaults; `signature`
  gives them their introspectable signature), and
- the value rule (`check` applies the field's bounds, choices and type at every door, so the CLI, the
  Python API and the request cannot disagree).

Nothing here imports torch or Typer: `diffcli --help` builds every option from these declarations.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Union

from diffcli import checks
from diffcli.errors import UsageError

META = "diffcli.param"


@dataclass(frozen=True)
class Param:
    """How one request field is offered and checked.

    help: the one help text (the CLI's --help, the API's docs). flags: the CLI spellings (default:
    `--name-with-dashes`). bound (a checks.Bound, shared with the config schema), or low / high (open
    ends with low_open / high_open), and choices bound the value;
    rule(name, value) -> value is a rule of its own (an odd kernel, an interval "LO:HI"), given the raw
    value in place of the type check. argument: a positional CLI argument instead of an option. cli=False: a Python-only
    field (or one a command spells its own way)."""

    help: str
    flags: tuple[str, ...] = ()
    bound: Any = None  # a checks.Bound: its ends (and its int / float rule) instead of low / high
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] | None = None
    what: str | None = None  # the kind of thing in words, for "unknown sampler 'x'"; None: the field's name
    rule: Callable[[str, Any], Any] | None = None
    metavar: str | None = None
    panel: str | None = None
    argument: bool = False
    hidden: bool = False
    envvar: str | None = None
    complete: str | Callable[[str], list[str]] | None = None  # "models": registry names (cli/params.py)
    cli: bool = True
    cli_type: Any = None  # what the CLI parses (str for an image the API also takes as an array); None: the field's


REQUIRED = dataclasses.MISSING  # param(REQUIRED, ...): a field every request must give (a CLI argument)


def param(default: Any = None, *, help: str, factory: Callable[[], Any] | None = None, **how: Any) -> Any:
    """A request field declared once (see Param for `how`). `factory` makes a mutable default."""
    meta = {META: Param(help=help, **how)}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class Declared:
    """One declared field of a request: its name, resolved type, default and Param."""

    name: str
    type: Any
    default: Any
    param: Param

    @property
    def optional(self) -> bool:
        return _is_optional(self.type)

    @property
    def base(self) -> Any:
        """The type without Optional (int, float, str, bool, list[str], ...)."""
        return _strip_optional(self.type)

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty

    @property
    def flags(self) -> tuple[str, ...]:
        return self.param.flags or ("--" + self.name.replace("_", "-"),)


def declared(cls: type) -> list[Declared]:
    """The fields of request class `cls` declared with `param`, in order."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        p = f.metadata.get(META)
        if p is None:
            continue
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        out.append(Declared(f.name, hints[f.name], inspect.Parameter.empty if default is REQUIRED else default, p))
    return out


def check_value(item: Declared, value: Any) -> Any:
    """`value` for field `item`, checked and normalised by the field's rule; a one-line UsageError naming
    the field otherwise."""
    name, p = item.name, item.param
    if value is None:
        if item.optional:
            return None
        raise UsageError(f"`{name}` must be given")
    if p.rule is not None:  # a rule of its own takes the raw value ("LO:HI", a dict) and checks it whole
        return p.rule(name, value)
    base = item.base
    if dataclasses.is_dataclass(base) and isinstance(base, type):  # a group of options (the sampling)
        if not isinstance(value, base):
            raise UsageError(f"`{name}` must be a {base.__name__}, got {value!r}")
        return check(value)
    if typing.get_origin(base) in (list, tuple, Sequence):
        element = (typing.get_args(base) or (Any,))[0]
        checked = [_check_one(name, element, p, v) for v in checks.as_list(value) or []]
        return tuple(checked) if typing.get_origin(base) is tuple else checked
    return _check_one(name, base, p, value)


def _check_one(name: str, base: Any, p: Param, value: Any) -> Any:
    if base is bool:
        value = checks.flag(name, value)
    elif base in (int, float) and p.bound is not None:
        value = p.bound(value, name)
    elif base is int:
        value = checks.integer(name, value, low=p.low, high=p.high)  # type: ignore[arg-type]
    elif base is float:
        value = checks.number(name, value, low=p.low, high=p.high, low_open=p.low_open, high_open=p.high_open)
    elif base is str:
        value = checks.text(name, value)
    if p.choices is not None:
        value = checks.choice(name, value, p.choices, what=p.what)
    return value


def check(request: Any) -> Any:
    """Every declared field of `request` checked by its rule and replaced by its normalised value (a
    numpy integer becomes an int, a single class a list); returns the request."""
    for item in declared(type(request)):
        object.__setattr__(request, item.name, check_value(item, getattr(request, item.name)))
    return request


def build(cls: type, values: dict[str, Any], *, what: str = "option") -> Any:
    """`cls(**values)` for a caller's keywords, with an unknown keyword refused in one line (and the
    nearest known name suggested) instead of Python's TypeError."""
    known = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = [k for k in values if k not in known]
    if unknown:
        bad = unknown[0]
        near = difflib.get_close_matches(bad, known, n=1)
        hint = f"did you mean `{near[0]}`?" if near else f"known: {', '.join(sorted(known))}"
        raise UsageError(f"unknown {what} `{bad}`", hint)
    return cls(**values)


def _is_group(item: Declared) -> bool:
    return dataclasses.is_dataclass(item.base) and isinstance(item.base, type)


def flat(cls: type) -> list[Declared]:
    """The declared fields of `cls` with each group (a nested request such as the sampling) replaced by
    its own fields: the keywords the Python API takes."""
    out: list[Declared] = []
    for item in declared(cls):
        out.extend(flat(item.base) if _is_group(item) else [item])
    return out


def build_flat(cls: type, values: dict[str, Any], *, what: str = "option") -> Any:
    """`cls` from flat keywords (a group's fields given at the top, as the Python API takes them), checked
    by the declarations; an unknown keyword is refused in one line with the nearest known name."""
    known = [item.name for item in flat(cls)]
    for key in values:
        if key not in known:
            near = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean `{near[0]}`?" if near else f"known: {', '.join(known)}"
            raise UsageError(f"unknown {what} `{key}`", hint)

    def make(kind: type) -> Any:
        kwargs = {}
        for item in declared(kind):
            if _is_group(item):
                kwargs[item.name] = make(item.base)
            elif item.name in values:
                kwargs[item.name] = values[item.name]
        return kind(**kwargs)

    return check(make(cls))


def signature(cls: type, *, first: Sequence[str] = (), extra: Sequence[inspect.Parameter] = ()) -> inspect.Signature:
    """The Python signature of a request's flat fields: "self" and `first` as positional-or-keyword
    parameters, the rest keyword-only, then `extra` (e.g. progress=). Used as `function.__signature__`, so
    help(), Jupyter's `?` and inspect show the declared names and defaults."""
    items = {item.name: item for item in flat(cls)}
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)] if "self" in first else []
    for name in first:
        if name in items:
            params.append(inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=items[name].default))
    for name, item in items.items():
        if name not in first:
            params.append(
                inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=item.default, annotation=item.type)
            )
    return inspect.Signature([*params, *extra])


def describe(cls: type) -> str:
    """The request's flat fields as docstring lines ("name: help"), for API docs written from the
    declarations ({default} reads "the command's default")."""
    return "\n".join(
        f"{item.name}: {item.param.help.format(default='the command' + chr(39) + 's default')}" for item in flat(cls)
    )


def _is_optional(tp: Any) -> bool:
    if tp is Any:
        return True
    return typing.get_origin(tp) in (Union, types.UnionType) and type(None) in typing.get_args(tp)


def _strip_optional(tp: Any) -> Any:
    if tp is Any:
        return Any
    if _is_optional(tp):
        rest = [a for a in typing.get_args(tp) if a is not type(None)]
        return rest[0] if len(rest) == 1 else Union[tuple(rest)]  # noqa: UP007
    return tp
