"""The ``emotrt`` command line: a thin layer over the library (DESIGN.md §1, STYLE.md 2).

Command modules import only typer at module level; each command imports the
library code it drives inside its body, so ``emotrt --help`` stays instant.
"""
from __future__ import annotations

import importlib
import logging
import sys
from typing import Optional

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


def main() -> None:
    """Entry point: user errors print one line and exit non-zero; bugs keep their traceback."""
    from emotrt.runtime.errors import EmotrtError

    try:
        app()
    except EmotrtError as exc:
        sys.stderr.write("error: {}\n".format(exc))
        sys.exit(exc.exit_code)
