"""Assembles the commands into one Typer app and turns every failure into a one-line error.

Exit codes: 0 success, 1 error, 2 usage error (a bad option or argument), 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import errno
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Annotated

import typer

from diffcli import __version__, console
from diffcli.cli import anagram, denoise, distill, doctor, hybrid, models, noise, sample, train
from diffcli.cli import eval as eval_cmd
from diffcli.errors import DiffcliError, InterruptedRun
from diffcli.signals import Terminated

try:  # Typer >= 0.20 vendors click; older ones use it directly.
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - depends on the installed Typer
    from click import exceptions as click_exceptions

ClickAbort = typer.Abort
ClickException = click_exceptions.ClickException
ClickUsageError = click_exceptions.UsageError
NoArgsIsHelpError = getattr(click_exceptions, "NoArgsIsHelpError", None)


def _plain_help() -> None:
    """Typer's help writes required arguments as {NAME} in the usage line and a <type> beside every
    flag and argument; ours reads as words: `diffcli anagram FIRST SECOND`, and no type where the
    metavar already says it or a flag takes no value. Guarded: other Typer versions keep their own."""
    from typer import core

    argument, option = getattr(core, "TyperArgument", None), getattr(core, "TyperOption", None)
    if argument is not None and hasattr(argument, "_usage_display_name"):

        def usage(self) -> str:
            name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
            return name + ("..." if self.nargs != 1 else "")

        argument._usage_display_name = usage
    if argument is not None and hasattr(argument, "display_type_rich"):
        argument.display_type_rich = lambda self, ctx: None
    if option is not None and hasattr(option, "display_type_rich"):
        typed = option.display_type_rich
        option.display_type_rich = lambda self, ctx: (
            None if getattr(self, "is_flag", False) and self.metavar is None else typed(self, ctx)
        )


_plain_help()

app = typer.Typer(
    name="diffcli",
    help="Learn, run and measure diffusion models: noise, denoise, train, sample, anagram, hybrid, eval.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    rich_markup_mode="markdown",  # paragraphs rewrap to the terminal; [default: ...] stays text
    context_settings={"help_option_names": ["-h", "--help"]},
)


def version_text() -> str:
    """diffcli's version, torch's, and the device commands use by default."""
    from diffcli.device import describe_devices
    from diffcli.models.hub import package_version

    devices = describe_devices()
    if devices.get("error"):
        device = devices["error"]
    elif devices["cuda"]:
        device = ", ".join(f"cuda:{g['index']} {g['name']}" for g in devices["cuda"])
    else:
        device = "mps" if devices["mps"] else f"cpu ({devices['cpu_cores']} cores)"
    return f"diffcli {__version__}\ntorch {package_version('torch') or 'missing'}\ndevice {device}"


def _version(value: bool) -> None:
    if value:
        print(version_text())
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", metavar="", help="Show tracebacks for errors (or set DIFFCLI_DEBUG=1).")
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "-q",
            "--quiet",
            metavar="",
            help="No progress or notes from the command (its -q); results still print.",
        ),
    ] = False,
    version: Annotated[
        bool | None,
        typer.Option(
            "--version",
            "-V",
            metavar="",
            callback=_version,
            is_eager=True,
            help="Print the versions of diffcli and torch, and the device, then exit.",
        ),
    ] = None,
) -> None:
    """diffcli: diffusion models from the command line. stdout carries data (PNG, JSON, paths); messages go
    to stderr."""
    if debug:
        console.configure(debug=True)
    if quiet:
        console.settings.quiet_all = True
        console.configure(quiet=True)


@app.command("version")
def version(
    json_output: Annotated[bool, typer.Option("--json", metavar="", help="Print them as one JSON object.")] = False,
) -> None:
    """Print the versions of diffcli and torch, and the device commands run on by default."""
    if json_output:
        console.emit_json(dict(line.split(" ", 1) for line in version_text().splitlines()))
        return
    print(version_text())


app.command("noise", no_args_is_help=True, epilog=noise.EXAMPLES)(noise.noise)
app.command("denoise", no_args_is_help=True, epilog=denoise.EXAMPLES)(denoise.denoise)
app.command("train", epilog=train.EXAMPLES)(train.train)
app.command("distill", epilog=distill.EXAMPLES)(distill.distill)
app.command("sample", epilog=sample.EXAMPLES)(sample.sample)
app.command("anagram", no_args_is_help=True, epilog=anagram.EXAMPLES)(anagram.anagram)
app.command("hybrid", no_args_is_help=True, epilog=hybrid.EXAMPLES)(hybrid.hybrid)
app.command("eval", epilog=eval_cmd.EXAMPLES)(eval_cmd.evaluate)
app.add_typer(models.app, name="models")
app.command("doctor")(doctor.doctor)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: run the app, map exceptions to one-line errors and exit codes."""
    sys.exit(run(argv))


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (tests call this directly)."""
    debug = os.environ.get("DIFFCLI_DEBUG", "") not in ("", "0")
    console.settings.quiet_all = False
    console.configure(debug=debug)
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = app(args=args, prog_name="diffcli", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except InterruptedRun as exc:  # Ctrl-C with the work saved: a calm line, not an error, even with -q
        console.stderr().print(_in_flags(exc.one_line(), args), markup=False)
        return exc.exit_code
    except DiffcliError as exc:
        console.error(_in_flags(exc.one_line(), args))
        if console.settings.debug:
            traceback.print_exc()
        return exc.exit_code
    except ClickUsageError as exc:
        if NoArgsIsHelpError is not None and isinstance(exc, NoArgsIsHelpError):
            console.stderr().print(exc.format_message(), markup=False)
            return 2
        where = exc.ctx.command_path if exc.ctx is not None else "diffcli"
        console.error(f"{exc.format_message()}{_command_hint(exc, where)} (see `{where} --help`)")
        return 2
    except ClickException as exc:
        console.error(exc.format_message())
        return exc.exit_code
    except Terminated as exc:
        console.error(str(exc))
        return exc.exit_code
    except (KeyboardInterrupt, ClickAbort):
        console.info("stopped (Ctrl-C)")
        return 130
    except BrokenPipeError:
        console.discard_stdout()
        return 0
    except SystemExit as exc:
        if _stdout_closed(exc):
            console.discard_stdout()
            return 0
        raise
    except OSError as exc:  # a file-system failure not mapped where it happened: still one line
        if console.settings.debug:
            traceback.print_exc()
        from diffcli.io.atomic import os_error

        where = exc.filename if exc.filename is not None else "a file"
        console.error(os_error("use", where, exc).one_line())
        return 1
    except Exception as exc:  # a bug, not a user mistake: still one line unless --debug
        if console.settings.debug:
            traceback.print_exc()
        else:
            console.error(
                f"internal error: {type(exc).__name__}: {exc} "
                "(rerun with --debug for the traceback, and please report it)"
            )
        return 1


def _command_hint(exc: Exception, where: str) -> str:
    """A top-level command that is a `models` subcommand (`diffcli list`, the ollama habit): say so.
    Click already suggests near misses of the commands themselves."""
    import re

    typed = re.match(r"No such command '(.+)'", str(getattr(exc, "message", exc)))
    if typed is None or where != "diffcli":
        return ""
    name = typed.group(1)
    sub = {c.name for c in models.app.registered_commands if c.name} | {"ls"}
    return f" Did you mean `diffcli models {'list' if name == 'ls' else name}`?" if name in sub else ""


def _stdout_closed(exc: SystemExit) -> bool:
    """Typer ends a command whose stdout reader went away with sys.exit(1); nobody was reading, so that
    is not a failure (exit 0, like `ls | true`)."""
    cause = exc.__context__
    return isinstance(cause, OSError) and cause.errno == errno.EPIPE


def _in_flags(text: str, args: Sequence[str]) -> str:
    """A library message in the command line's words: `steps` -> --steps (see cli/flags.py)."""
    from diffcli.cli.flags import flags_of, render

    try:
        return render(text, flags_of(app, args))
    except Exception:  # the message matters more than its wording
        return text
