"""The ``emotrt`` command line: a thin layer over the library (DESIGN.md §1, STYLE.md 2).

Command modules import only typer at module level; each command imports the
library code it drives inside its body, so ``emotrt --help`` stays instant.
"""
from __future__ import annotations

import importlib
import logging
import sys
from typing import List, Optional, Sequence

import typer

from emotrt import __version__

# (name, "module:attribute"): a function becomes a command, a Typer app a command group.
COMMANDS = [
    ("doctor", "emotrt.commands.doctor:doctor"),
    ("data", "emotrt.commands.data:data"),
    ("train", "emotrt.commands.train:train"),
    ("eval", "emotrt.commands.eval:eval_"),
    ("build", "emotrt.commands.build:build"),
    ("selftest", "emotrt.commands.selftest:selftest"),
    ("devices", "emotrt.commands.devices:devices"),
    ("run", "emotrt.commands.run:run"),
    ("extract", "emotrt.commands.extract:extract"),
    ("audio-devices", "emotrt.commands.audio_devices:audio_devices"),
    ("export", "emotrt.commands.export:export"),
    ("lint", "emotrt.commands.lint:lint"),
    ("env", "emotrt.commands.env:app"),
    ("enroll", "emotrt.commands.enroll:enroll"),
    ("calibrate", "emotrt.commands.calibrate:calibrate"),
    ("profile", "emotrt.commands.profile:app"),
    ("flash", "emotrt.commands.flash:flash"),
    ("rollback", "emotrt.commands.flash:rollback"),
    ("status", "emotrt.commands.flash:status"),
    ("sign", "emotrt.commands.flash:sign"),
    ("package", "emotrt.commands.package:package"),
]

app = typer.Typer(
    name="emotrt",
    help="Noise-robust speech emotion recognition: PyTorch checkpoints -> TensorRT engines on Jetson.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo("emotrt " + __version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details."),
) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def _register() -> None:
    for name, target in COMMANDS:
        module_name, attr = target.split(":")
        obj = getattr(importlib.import_module(module_name), attr)
        if isinstance(obj, typer.Typer):
            app.add_typer(obj, name=name)
        else:
            app.command(name)(obj)


_register()


# Options whose value may be left out: `--mic` is the default input, `--mic USB` / `--mic 3` a chosen one.
# Typer's parser (0.29) has no optional-value options (click 8's flag_value did this): a bare `--mic`
# took the next token as the device (`--mic --live` looked for a microphone called "--live") or failed
# at the end of the line. Where no value follows, the option gets an explicit empty one (`--mic=`).
OPTIONAL_VALUES = {"run": ("--mic",), "enroll": ("--mic",)}


def fill_optional_values(argv: Sequence[str]) -> List[str]:
    """``argv`` with every bare optional-value option of its command written as ``--option=``."""
    command = next((a for a in argv if not a.startswith("-")), None)
    names = OPTIONAL_VALUES.get(command or "", ())
    return [arg + "=" if arg in names and (i + 1 == len(argv) or argv[i + 1].startswith("-")) else arg
            for i, arg in enumerate(argv)]


def main() -> None:
    """Entry point: user errors print one line and exit non-zero; bugs keep their traceback."""
    from emotrt.runtime.errors import EmotrtError

    try:
        app(args=fill_optional_values(sys.argv[1:]), prog_name="emotrt")
    except EmotrtError as exc:
        sys.stderr.write("error: {}\n".format(exc))
        sys.exit(exc.exit_code)
