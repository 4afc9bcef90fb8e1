"""Training recipes: TOML files with ``--set key=value`` overrides, validated into frozen dataclasses.

A recipe names its ``task`` (``tse``, ``ser``, ``joint``), holds the generic ``[train]`` table
read by the trainer, and task-specific tables (``[model]``, ``[data]``, ``[loss]``, ...) that the
task parses with :func:`parse_section`. Unknown keys and sections are errors naming the
valid ones, so a typo never silently trains the default.

Example::

    >>> recipe = recipe_from_dict({"task": "tse", "train": {"out": "runs/x", "steps": 10}},
    ...                          overrides=["train.lr=0.01"])
    >>> recipe.train.steps, recipe.train.lr
    (10, 0.01)
"""
from __future__ import annotations

import copy
import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Type, TypeVar

from emotrt.runtime.errors import ConfigError

T = TypeVar("T")
RECIPES_DIR = Path(__file__).resolve().parent / "recipes"


@dataclass(frozen=True)
class TrainConfig:
    """The generic optimisation loop (``[train]``)."""

    out: str  # run directory: last/ and best/ checkpoints, trainer state, metrics.jsonl
    seed: int = 0
    steps: int = 1000  # total optimiser updates
    epoch_steps: int = 200  # updates between validations (on-the-fly mixing has no natural epoch)
    lr: float = 1e-3
    min_lr: float = 1e-5  # cosine decay floor
    warmup_steps: int = 0
    weight_decay: float = 0.0
    grad_clip: float = 5.0  # max global gradient norm; 0 disables
    checkpoint_minutes: float = 5.0  # save last/ at least this often (and at every validation)
    max_minutes: float = 0.0  # stop (resumably) after this long; 0 = run to ``steps``
    stop_step: int = 0  # stop (resumably) on reaching this step, e.g. to change [data] for the rest; 0 = run to ``steps``
    threads: int = 1  # torch intra-op threads per process
    log_every: int = 10  # updates between train lines in metrics.jsonl

    def __post_init__(self) -> None:
        bad = [n for n in ("steps", "epoch_steps", "threads", "log_every") if getattr(self, n) <= 0]
        bad += [n for n in ("lr",) if getattr(self, n) <= 0]
        bad += [n for n in ("min_lr", "warmup_steps", "weight_decay", "grad_clip", "checkpoint_minutes", "max_minutes", "stop_step")
                if getattr(self, n) < 0]
        if bad:
            raise ConfigError("recipe [train]: {} out of range (counts and lr must be positive, the rest >= 0)".format(
                ", ".join(bad)))
        if not self.out:
            raise ConfigError("recipe [train]: out must name the run directory",
                              hint="--set train.out=runs/my_run")


@dataclass(frozen=True)
class Recipe:
    """A validated recipe: the task name, the ``[train]`` table and the task's own tables."""

    task: str
    train: TrainConfig
    sections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    source: str = ""  # the file it came from, for provenance
    raw: Mapping[str, Any] = field(default_factory=dict)  # the merged TOML, stored in checkpoints


def _toml():
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib  # type: ignore[no-redef]
    return tomllib


def parse_value(text: str) -> Any:
    """A ``--set`` value as TOML (numbers, booleans, lists, quoted strings), else the bare string."""
    try:
        return _toml().loads("v = " + text)["v"]
    except Exception:  # not a TOML literal: a bare word such as a path
        return text


def apply_overrides(data: Dict[str, Any], overrides: Iterable[str]) -> Dict[str, Any]:
    """A copy of ``data`` with each ``section.key=value`` (dots nest) set."""
    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError("--set expects key=value, found {!r}".format(item), hint="--set train.steps=100")
        parts = key.strip().split(".")
        node = data
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError("--set {}: {!r} is a value, not a table".format(key, part))
            node = child
        node[parts[-1]] = parse_value(value.strip())
    return data


def _check_type(value: Any, kind: Any, where: str) -> Any:
    origin = typing.get_origin(kind)
    if origin is typing.Union:
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        return None if value is None else _check_type(value, options[0], where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError("{}: expected a list, found {!r}".format(where, value))
        item = typing.get_args(kind)[0]
        return tuple(_check_type(v, item, where) for v in value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind in (int, float, str, bool) and (type(value) is not kind):
        raise ConfigError("{}: expected {}, found {!r}".format(where, kind.__name__, value))
    return value


def parse_section(table: Mapping[str, Any], cls: Type[T], where: str) -> T:
    """A frozen dataclass ``cls`` from a TOML table, refusing unknown keys and wrong types."""
    if not isinstance(table, Mapping):
        raise ConfigError("{}: expected a table, found {!r}".format(where, table))
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(table) - set(names))
    if unknown:
        raise ConfigError("{}: unknown key(s) {}; valid keys: {}".format(where, ", ".join(unknown), ", ".join(names)),
                          hint="fix the recipe or the --set key")
    required = [f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]  # type: ignore[misc]
    missing = [n for n in required if n not in table]
    if missing:
        raise ConfigError("{}: missing key(s) {}".format(where, ", ".join(missing)))
    values = {k: _check_type(v, hints[k], "{}.{}".format(where, k)) for k, v in table.items()}
    return cls(**values)


def check_sections(recipe: Recipe, allowed: Sequence[str]) -> None:
    """Refuse task tables other than ``allowed`` (so a misspelt ``[modle]`` is an error)."""
    unknown = sorted(set(recipe.sections) - set(allowed))
    if unknown:
        raise ConfigError("recipe for task {!r}: unknown table(s) {}; valid tables: train, {}".format(
            recipe.task, ", ".join(unknown), ", ".join(allowed)))


def recipe_from_dict(data: Mapping[str, Any], overrides: Sequence[str] = (), source: str = "") -> Recipe:
    """A validated :class:`Recipe` from parsed TOML plus ``--set`` overrides."""
    merged = apply_overrides(dict(data), overrides)
    task = merged.get("task")
    if not isinstance(task, str) or not task:
        raise ConfigError("recipe {}: needs a top-level task = \"tse\" | \"ser\" | \"joint\"".format(source or ""))
    train = parse_section(merged.get("train", {}), TrainConfig, "recipe [train]")
    scalars = sorted(k for k, v in merged.items() if k not in ("task", "train") and not isinstance(v, dict))
    if scalars:
        raise ConfigError("recipe {}: unknown top-level key(s) {}; only task and tables are allowed".format(
            source, ", ".join(scalars)))
    sections = {k: v for k, v in merged.items() if k not in ("task", "train")}
    return Recipe(task=task, train=train, sections=sections, source=source, raw=merged)


def find_recipe(path: Any) -> Path:
    """``path`` itself, or a recipe shipped in ``training/recipes`` by name (``tse_edge``)."""
    candidate = Path(path)
    if candidate.is_file():
        return candidate
    shipped = RECIPES_DIR / (candidate.name if candidate.suffix == ".toml" else candidate.name + ".toml")
    if shipped.is_file():
        return shipped
    names = ", ".join(sorted(p.stem for p in RECIPES_DIR.glob("*.toml")))
    raise ConfigError("recipe not found: {}".format(path), hint="give a TOML file or one of: " + names)


def load_recipe(path: Any, overrides: Sequence[str] = (), task: Optional[str] = None) -> Recipe:
    """Read a recipe TOML, apply ``--set`` overrides and validate; ``task`` must match when given."""
    path = find_recipe(path)
    try:
        data = _toml().loads(path.read_text())
    except Exception as exc:
        raise ConfigError("recipe {} is not valid TOML: {}".format(path, exc))
    recipe = recipe_from_dict(data, overrides, source=str(path))
    if task is not None and recipe.task != task:
        raise ConfigError("recipe {} is for task {!r}, not {!r}".format(path, recipe.task, task),
                          hint="emotrt train {} {}".format(recipe.task, path))
    return recipe
