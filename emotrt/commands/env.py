"""``emotrt env add|list|remove|import``: the environment table."""
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(help="Environment table: descriptions -> tokens for the SER graph.", no_args_is_help=True)

TABLE = typer.Option(Path("env"), "--table", help="Environment table directory (the bundle's env/).")
CKPT = typer.Option(..., "--ckpt", help="SER checkpoint whose text encoder and projection make the tokens.")
TEMPLATE = typer.Option(None, "--template", help="Prompt template name or a string with {} (default: the checkpoint's).")
REPLACE = typer.Option(False, "--replace", help="Overwrite environments that already exist.")


@app.command("add")
def add(
    name: str = typer.Argument(..., help="Environment id, e.g. busy_cafe."),
    descriptions: List[str] = typer.Argument(..., help="One or more paraphrases describing it."),
    table: Path = TABLE, ckpt: Path = CKPT, template: Optional[str] = TEMPLATE, replace: bool = REPLACE,
) -> None:
    """Embed descriptions with the checkpoint's text encoder and projection; store the token."""
    from emotrt.export.environments import EnvironmentEmbedder, add_environment

    token = add_environment(table, EnvironmentEmbedder.from_checkpoint(ckpt), name, descriptions, template, replace)
    typer.echo("added {} ({} description(s), token of {})".format(name, len(descriptions), token.size))


@app.command("list")
def list_(table: Path = TABLE) -> None:
    """List environments and their descriptions."""
    from emotrt.export.environments import list_environments

    for name, descriptions in list_environments(table):
        typer.echo("{}\t{}".format(name, " | ".join(descriptions)))


@app.command("remove")
def remove(name: str = typer.Argument(...), table: Path = TABLE) -> None:
    """Remove one environment."""
    from emotrt.export.environments import remove_environment

    remove_environment(table, name)
    typer.echo("removed " + name)


@app.command("import")
def import_(
    file: Path = typer.Argument(..., help="JSON: {id: {\"descriptions\": [...]}} (corpus environments.json), {id: [...]} or {id: \"text\"}."),
    table: Path = TABLE, ckpt: Path = CKPT, template: Optional[str] = TEMPLATE, replace: bool = REPLACE,
) -> None:
    """Add every environment of a JSON file (all names checked before any is written)."""
    from emotrt.export.environments import EnvironmentEmbedder, import_environments

    names = import_environments(table, EnvironmentEmbedder.from_checkpoint(ckpt), file, template, replace)
    typer.echo("imported {} environment(s): {}".format(len(names), ", ".join(names)))
