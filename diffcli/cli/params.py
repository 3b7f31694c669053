"""Typer options built from the one declaration of each option (diffcli/params.py).

`@options(request=SampleRequest, run=Output)` adds every declared field of each class to the
command's signature (a nested request dataclass, such as the sampling settings, adds its fields too),
and hands the command one built object per keyword: `request=SampleRequest(...)`, `run=Output(...)`.
So a flag, its metavar, help text, panel and completion are written once, beside the field's default
and value rule, and the Python API reads the same field.

Nothing here imports torch: `diffcli --help` must stay fast.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Optional, Union

import typer

from diffcli.params import Declared, declared


def _is_group(item: Declared) -> bool:
    return dataclasses.is_dataclass(item.base) and isinstance(item.base, type)


def _typer_info(item: Declared) -> Any:
    p = item.param
    if p.argument:
        return typer.Argument(
            metavar=p.metavar or item.name.upper(),
            help=p.help,
            show_default=False,
            hidden=p.hidden,
            autocompletion=_completion(p),
        )
    metavar = "" if item.base is bool else (p.metavar or _default_metavar(item))
    return typer.Option(
        *item.flags,
        help=p.help,
        metavar=metavar,
        rich_help_panel=p.panel,
        hidden=p.hidden,
        envvar=p.envvar,
        autocompletion=_completion(p),
        callback=CALLBACKS.get(p.complete) if isinstance(p.complete, str) else None,
        show_default=not item.required and item.default not in (None, False, "", ()),
    )


def _complete_models(incomplete: str) -> list[str]:
    """Registry model names for shell completion (never fails: completion must stay quiet)."""
    try:
        from diffcli.models.registry import Registry

        return [name for name in Registry().names() if name.startswith(incomplete)]
    except Exception:
        return []


def _complete_classes(ctx: typer.Context, incomplete: str) -> list[str]:
    """The class names (and indices) of the model the command line names with -m (else the registry's
    default), for shell completion; nothing for text-to-image models (never fails)."""
    try:
        from diffcli.models.config import label_lookup
        from diffcli.models.registry import Registry

        config = Registry().get(ctx.params.get("model")).config()
        if config.cond_type != "class":
            return []
        names = [*(label.replace(" ", "-") for label in config.labels), *label_lookup(config)]
        return sorted({n for n in names if n.startswith(incomplete)}, key=names.index)
    except Exception:
        return []


def _complete_images(incomplete: str) -> list[str]:
    """The shipped sample images as builtin:NAME once a word starts like it; otherwise nothing, so the
    shell completes file names (the completion script falls back to them)."""
    if not incomplete or not ("builtin:".startswith(incomplete) or incomplete.startswith("builtin:")):
        return []
    from diffcli.io.images import BUILTIN_PREFIX, builtin_images

    return [f"{BUILTIN_PREFIX}{name}" for name in builtin_images() if f"{BUILTIN_PREFIX}{name}".startswith(incomplete)]


# "models": complete registry names; "model": also refuse a name that is not registered (-m)
COMPLETERS: dict[str, Callable[..., list[str]]] = {
    "models": _complete_models,
    "model": _complete_models,
    "classes": _complete_classes,
    "images": _complete_images,
}


KNOWN_PIPELINES = {"if": "DeepFloyd/IF-I-XL-v1.0"}  # names people type before adding them (docs/deepfloyd-if.md)


def _check_model(ctx: typer.Context, value: str | None) -> str | None:
    """-m NAME names a registered model, checked before anything loads or downloads: a near miss gets
    "did you mean", a known pipeline that is not added yet gets the `models add` line."""
    if value is None or ctx.resilient_parsing:
        return value
    import difflib

    from diffcli.errors import UsageError
    from diffcli.models.registry import Registry

    names = Registry().names()
    if value in names:
        return value
    if value in KNOWN_PIPELINES:
        add = f"diffcli models add {value} --hub {KNOWN_PIPELINES[value]}"
        raise UsageError(
            f"no model named {value!r} yet",
            f"add it first: `{add}` (a GPU and `pip install 'diffcli[hub]'`; see docs/deepfloyd-if.md)",
        )
    close = difflib.get_close_matches(value, names, n=1, cutoff=0.6)
    guess = f"did you mean {close[0]!r}? " if close else ""
    known = ", ".join(names) or "none"
    raise UsageError(f"no model named {value!r}", f"{guess}registered: {known} (`diffcli models list`)")


CALLBACKS: dict[str, Callable[..., Any]] = {"model": _check_model}  # checked as the option is parsed


def _completion(p: Any) -> Callable[[str], list[str]] | None:
    if isinstance(p.complete, str):
        return COMPLETERS[p.complete]
    return p.complete or (_choices(p.choices) if p.choices else None)


def _default_metavar(item: Declared) -> str:
    base = item.base
    if typing.get_origin(base) in (list, tuple):
        (base,) = typing.get_args(base)[:1] or (str,)
    return {int: "INT", float: "NUMBER", str: "TEXT"}.get(base, "VALUE")


def _choices(values: tuple[str, ...]) -> Callable[[str], list[str]]:
    return lambda incomplete: [v for v in values if v.startswith(incomplete)]


def _cli_type(item: Declared) -> Any:
    if item.param.cli_type is not None:
        base = item.param.cli_type
        return base if item.required else Optional[base]  # noqa: UP045 (a runtime type for Typer)
    base = item.base
    if typing.get_origin(base) in (Union, types.UnionType) and str in typing.get_args(base):
        base = str  # text on the command line ("LO:HI"); the field's rule parses it
    elif typing.get_origin(base) is tuple:
        base = list[typing.get_args(base)[0]]  # Typer takes repeated options as a list
    if item.required:
        return base
    return Optional[base] if item.optional or item.default is None else base  # noqa: UP045 (a runtime type for Typer)


def flatten(cls: type, exclude: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Declared]]:
    """(path, field) for every CLI field of `cls`, nested request groups expanded: ("sampling", "steps")."""
    out: list[tuple[tuple[str, ...], Declared]] = []
    for item in declared(cls):
        if item.name in exclude or not item.param.cli:
            continue
        if _is_group(item):
            out.extend(((item.name, *path), inner) for path, inner in flatten(item.base, exclude))
        else:
            out.append(((item.name,), item))
    return out


def parameters(
    cls: type,
    exclude: tuple[str, ...] = (),
    overrides: Callable[[Declared], str] | None = None,
    wording: dict[str, str] | None = None,
) -> list[inspect.Parameter]:
    """The Typer-annotated parameters for every CLI field of `cls` (arguments positional, options keyword).
    With `overrides`, each option defaults to None ("not given": the caller's base value stands) and its
    help ends with overrides(field), e.g. the defaults of each preset. `wording` fills a help text's
    `{default}` with what the command does when the option is left out (by field name, "*" for the rest)."""
    params = []
    for _, item in flatten(cls, exclude):
        if "{default}" in item.param.help:
            words = (wording or {}).get(item.name) or (wording or {}).get("*") or "the model's"
            item = dataclasses.replace(
                item, param=dataclasses.replace(item.param, help=item.param.help.format(default=words))
            )
        if overrides is not None:
            p = dataclasses.replace(item.param, help=f"{item.param.help} {overrides(item)}".rstrip())
            item = dataclasses.replace(item, default=None, param=p, type=Optional[item.base])  # noqa: UP045
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD if item.param.argument else inspect.Parameter.KEYWORD_ONLY
        annotation = Annotated[_cli_type(item), _typer_info(item)]
        params.append(inspect.Parameter(item.name, kind, default=item.default, annotation=annotation))
    return params


def assemble(cls: type, values: dict[str, Any], exclude: tuple[str, ...] = ()) -> Any:
    """An instance of `cls` from the flat CLI values (nested groups rebuilt; excluded fields keep their
    defaults). Lists from Typer stay lists; an empty repeated option is None."""
    kwargs: dict[str, Any] = {}
    for item in declared(cls):
        if item.name in exclude or not item.param.cli:
            continue
        if _is_group(item):
            kwargs[item.name] = assemble(item.base, values, exclude)
        elif item.name in values:
            value = values[item.name]
            kwargs[item.name] = None if value == [] and item.default is None else value
    return cls(**kwargs)


def options(
    exclude: tuple[str, ...] = (),
    overrides: tuple[str, ...] = (),
    describe: Callable[[Declared], str] | None = None,
    wording: dict[str, str] | None = None,
    **groups: type,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the declared fields of each class in `groups` to a Typer command; the command receives one
    built instance per group keyword (fields in `exclude` are neither offered nor set). A group named in
    `overrides` is handed as a dict of the options given ({} when none): its options default to None and
    their help ends with describe(field). `wording`: see `parameters`."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        hints = typing.get_type_hints(command, include_extras=True)
        own = [
            p.replace(annotation=hints.get(p.name, p.annotation))
            for p in inspect.signature(command).parameters.values()
            if p.name not in groups
        ]
        added: list[inspect.Parameter] = []
        names: dict[str, list[str]] = {}
        for group, cls in groups.items():
            describing = (describe or (lambda item: "")) if group in overrides else None
            group_params = parameters(cls, exclude, describing, wording)
            names[group] = [p.name for p in group_params]
            added.extend(group_params)
        clash = {p.name for p in own} & {p.name for p in added}
        if clash or len({p.name for p in added}) != len(added):
            raise TypeError(f"options declared twice on {command.__name__}: {sorted(clash) or 'between groups'}")

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for group, cls in groups.items():
                values = {name: kwargs.pop(name) for name in names[group] if name in kwargs}
                if group in overrides:
                    kwargs[group] = {k: v for k, v in values.items() if v is not None}
                else:
                    kwargs[group] = assemble(cls, values, exclude)
            return command(*args, **kwargs)

        every = added + own  # the declared options first, then the command's own (output, device)
        positional = [p for p in every if p.kind != inspect.Parameter.KEYWORD_ONLY]
        keyword = [
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in every if p.kind == inspect.Parameter.KEYWORD_ONLY
        ]
        positional = [p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in positional]
        wrapper.__signature__ = inspect.Signature(positional + keyword)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in positional + keyword}
        del wrapper.__wrapped__  # Typer must read the new signature, not the command's own
        return wrapper

    return decorate


def annotated(cls: type, name: str) -> Any:
    """The Typer annotation of one declared field of `cls`, for a command that takes it alone."""
    (item,) = [i for i in declared(cls) if i.name == name]
    return Annotated[_cli_type(item), _typer_info(item)]
