"""Loading the configuration directory, with every error pointing at a file, line and key.

Layout of a configuration directory (``--config DIR``)::

    dialerd.yaml            the daemon
    dialerd.d/*.yaml        optional overrides of dialerd.yaml, applied in name order
    campaigns/*.yaml        one campaign per file; files naming the same campaign (``name:``,
                            default the file stem) are merged in name order, later wins

Merging is per key: mappings merge recursively, anything else (scalars, lists) is replaced
whole by the later file. Each value remembers the file and line it came from, so a
validation error blames the file that actually supplied the bad value.

Secrets never need to sit in the YAML: any string may contain ``${ENV:NAME}`` (the
environment variable; ``${ENV:NAME:-default}`` for a fallback) or ``${FILE:path}`` (the
file's content without the trailing newline, path relative to the YAML file), and a key
``secret_file:`` / ``password_file:`` is shorthand for ``secret: ${FILE:...}`` /
``password: ...``.
"""

from __future__ import annotations

import difflib
import os
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from dialerd.config.models import CampaignConfig, DaemonConfig, InvalidKey

__all__ = ["Config", "ConfigError", "ConfigIssue", "load_campaigns", "load_config"]

Key = str | int
Path_ = tuple[Key, ...]


@dataclass(frozen=True)
class Where:
    """A place in a YAML file (1-based line)."""

    file: str
    line: int


@dataclass(frozen=True)
class ConfigIssue:
    """One thing wrong with the configuration, phrased for the admin who has to fix it."""

    file: str
    line: int
    key: str
    message: str

    def __str__(self) -> str:
        key = f" {self.key}:" if self.key else ""
        return f"{self.file}:{self.line}:{key} {self.message}"


class ConfigError(Exception):
    """The configuration is unusable; ``issues`` lists every problem found, in file order."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = tuple(sorted(issues, key=lambda i: (i.file, i.line, i.key)))
        super().__init__("\n".join(str(i) for i in self.issues))


@dataclass
class _Doc:
    """A YAML value tree plus where each path in it was written."""

    value: Any
    marks: dict[Path_, Where] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    """The validated configuration directory."""

    directory: Path
    daemon: DaemonConfig
    campaigns: Mapping[str, CampaignConfig]

    @property
    def store_path(self) -> Path:
        """The database file, relative paths taken from the configuration directory."""
        return self.directory / self.daemon.store.path


# --------------------------------------------------------------------------------------------
# YAML with marks

_SECRET_KEYS = {"secret_file": "secret", "password_file": "password"}
_INTERPOLATION = re.compile(r"\$\{(ENV|FILE):([^}]*)\}")


def _read_yaml(path: Path, display: str, issues: list[ConfigIssue]) -> _Doc | None:
    """Parse one file into a `_Doc`; syntax and reference problems go into `issues`."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        issues.append(ConfigIssue(display, 1, "", f"cannot read file: {exc.strerror}"))
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        issues.append(ConfigIssue(display, line, "", "not UTF-8 text; expected a UTF-8 file"))
        return None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            issues.append(ConfigIssue(display, 1, "", "file is empty; expected a mapping"))
            return None
        doc = _Doc(None)
        doc.value = _build(loader, node, (), doc, display, path.parent, issues)
        return doc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        issues.append(ConfigIssue(display, line, "", f"YAML syntax error: {problem}{context}"))
        return None
    finally:
        loader.dispose()


def _build(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    path: Path_,
    doc: _Doc,
    display: str,
    base_dir: Path,
    issues: list[ConfigIssue],
) -> Any:
    """Construct a node's value, recording the line of each key/item on the way."""
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str | int) or isinstance(key, bool):
                issues.append(
                    ConfigIssue(display, line, _dotted(path), f"key {key!r} is not a plain name")
                )
                continue
            if key in _SECRET_KEYS and isinstance(value_node, yaml.ScalarNode):
                target = _SECRET_KEYS[key]
                if any(loader.construct_object(k) == target for k, _ in node.value):
                    issues.append(
                        ConfigIssue(
                            display,
                            line,
                            _dotted((*path, key)),
                            f"give either {target} or {key}, not both",
                        )
                    )
                    continue
                file_ref = loader.construct_object(value_node)
                value_node = yaml.ScalarNode(
                    "tag:yaml.org,2002:str", f"${{FILE:{file_ref}}}", value_node.start_mark
                )
                key = target
            if key in result:
                issues.append(
                    ConfigIssue(
                        display,
                        line,
                        _dotted((*path, key)),
                        "key appears twice in this mapping; expected each key once",
                    )
                )
                continue
            doc.marks[(*path, key)] = Where(display, line)
            result[key] = _build(loader, value_node, (*path, key), doc, display, base_dir, issues)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            doc.marks[(*path, index)] = Where(display, item.start_mark.line + 1)
            items.append(_build(loader, item, (*path, index), doc, display, base_dir, issues))
        return items
    value = loader.construct_object(node, deep=True)
    if isinstance(value, str) and "${" in value:
        where = Where(display, node.start_mark.line + 1)
        return _interpolate(value, where, path, base_dir, issues)
    return value


def _interpolate(
    text: str, where: Where, path: Path_, base_dir: Path, issues: list[ConfigIssue]
) -> str:
    """Replace ``${ENV:NAME}``, ``${ENV:NAME:-default}`` and ``${FILE:path}``."""

    def one(match: re.Match[str]) -> str:
        kind, ref = match.group(1), match.group(2)
        if kind == "ENV":
            name, has_default, default = ref.partition(":-")
            value = os.environ.get(name)
            if value is None:
                if has_default:
                    return default
                issues.append(
                    ConfigIssue(
                        where.file,
                        where.line,
                        _dotted(path),
                        f"environment variable {name} is not set; expected it to hold the value"
                        " (or write ${ENV:" + name + ":-default})",
                    )
                )
                return ""
            return value
        file = (base_dir / ref).resolve()
        try:
            return file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            issues.append(
                ConfigIssue(
                    where.file,
                    where.line,
                    _dotted(path),
                    f"cannot read secret file {file}: {exc.strerror}; expected a readable file",
                )
            )
            return ""

    return _INTERPOLATION.sub(one, text)


def _merge(base: _Doc, over: _Doc) -> _Doc:
    """Deep-merge `over` onto `base` (mappings recurse, everything else is replaced)."""
    marks = dict(base.marks)

    def merge(a: Any, b: Any, path: Path_) -> Any:
        if isinstance(a, dict) and isinstance(b, dict):
            out = dict(a)
            for key, value in b.items():
                sub = (*path, key)
                marks[sub] = over.marks[sub]
                out[key] = merge(a[key], value, sub) if key in a else _take(value, sub)
            return out
        return _take(b, path)

    def _take(value: Any, path: Path_) -> Any:
        for stale in [p for p in marks if p[: len(path)] == path and len(p) > len(path)]:
            del marks[stale]
        for p, where in over.marks.items():
            if p[: len(path)] == path:
                marks[p] = where
        return value

    return _Doc(merge(base.value, over.value, ()), marks)


# --------------------------------------------------------------------------------------------
# Validation with located errors

M = TypeVar("M", bound=BaseModel)


def _validate(model: type[M], doc: _Doc, root: Where, issues: list[ConfigIssue]) -> M | None:
    if not isinstance(doc.value, dict):
        issues.append(
            ConfigIssue(root.file, root.line, "", "expected a mapping of keys at the top level")
        )
        return None
    try:
        return model.model_validate(doc.value)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            issues.append(_issue(model, error, doc, root))
        return None


def _issue(model: type[BaseModel], error: Any, doc: _Doc, root: Where) -> ConfigIssue:
    loc: Path_ = tuple(k for k in error["loc"] if k != "[key]")
    # pydantic adds the failing union member / tagged type names to loc: drop those not in YAML
    loc = _real_path(loc, doc.value)
    ctx = error.get("ctx") or {}
    cause = ctx.get("error")
    if isinstance(cause, InvalidKey):
        loc = (*loc, *cause.key)
    where = _where(loc, doc, root)
    kind = error["type"]
    if kind == "missing":
        message = "required key is missing; expected " + _describe(model, loc)
    elif kind == "extra_forbidden":
        message = _unknown_key(model, loc)
    else:
        message = str(cause) if cause is not None else error["msg"]
        if kind not in ("value_error", "assertion_error") and "input" in error:
            message += f" (got {_show(error['input'])})"
    return ConfigIssue(where.file, where.line, _dotted(loc), message)


def _real_path(loc: Path_, value: Any) -> Path_:
    """Keep the prefix of a pydantic loc that addresses the YAML tree (drops type tags)."""
    out: list[Key] = []
    for key in loc:
        if not _has(value, key):
            if isinstance(value, dict | list):
                out.append(key)  # a missing key: still part of the admin's path
            break
        value = value[key]
        out.append(key)
    return tuple(out)


def _has(value: Any, key: Key) -> bool:
    if isinstance(value, dict):
        return key in value
    return isinstance(value, list) and isinstance(key, int) and 0 <= key < len(value)


def _where(loc: Path_, doc: _Doc, root: Where) -> Where:
    for end in range(len(loc), 0, -1):
        where = doc.marks.get(loc[:end])
        if where is not None:
            return where
    return root


def _unknown_key(model: type[BaseModel], loc: Path_) -> str:
    parent = _model_at(model, loc[:-1])
    allowed = list(parent.model_fields) if parent else []
    bad = str(loc[-1]) if loc else ""
    if not allowed:
        return "unknown key"
    close = difflib.get_close_matches(bad, allowed, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"unknown key{hint}; expected one of: {', '.join(allowed)}"


def _describe(model: type[BaseModel], loc: Path_) -> str:
    """What a missing key should hold, from the field's description."""
    parent = _model_at(model, loc[:-1])
    info = parent.model_fields.get(str(loc[-1])) if parent and loc else None
    return info.description if info is not None and info.description else "a value"


def _model_at(model: type[BaseModel], path: Path_) -> type[BaseModel] | None:
    """The model that validates the mapping at `path` (through dicts, tuples, Optionals)."""
    current: Any = model
    for key in path:
        current = _without_none(current)
        if _is_model(current):
            info = current.model_fields.get(str(key))
            if info is None:
                return None
            current = info.annotation
        else:  # a container: dict[K, V] or tuple[V, ...] -> V
            args = [a for a in getattr(current, "__args__", ()) if a is not Ellipsis]
            if not args:
                return None
            current = args[-1]
    current = _without_none(current)
    return current if _is_model(current) else None


def _without_none(annotation: Any) -> Any:
    """``X | None`` -> ``X``; anything else unchanged."""
    if isinstance(annotation, types.UnionType):
        members = [a for a in annotation.__args__ if a is not type(None)]
        return members[0] if len(members) == 1 else annotation
    return annotation


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _dotted(path: Path_) -> str:
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


# --------------------------------------------------------------------------------------------
# The directory


def _yaml_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def _display(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base.parent))
    except ValueError:
        return str(path)


def _load_merged(
    files: list[Path], base: Path, issues: list[ConfigIssue]
) -> tuple[_Doc, Where] | None:
    merged: _Doc | None = None
    root: Where | None = None
    for file in files:
        display = _display(file, base)
        doc = _read_yaml(file, display, issues)
        if doc is None:
            continue
        if not isinstance(doc.value, dict):
            issues.append(
                ConfigIssue(display, 1, "", "expected a mapping of keys at the top level")
            )
            continue
        if merged is None:
            merged, root = doc, Where(display, 1)
        else:
            merged = _merge(merged, doc)
    if merged is None or root is None:
        return None
    return merged, root


def load_campaigns(
    directory: Path, issues: list[ConfigIssue], base: Path | None = None
) -> dict[str, CampaignConfig]:
    """Every campaign in `directory`, merged per name; problems are appended to `issues`."""
    base = base or directory
    by_name: dict[str, list[Path]] = {}
    for file in _yaml_files(directory):
        by_name.setdefault(_campaign_name(file), []).append(file)
    campaigns: dict[str, CampaignConfig] = {}
    for name, files in sorted(by_name.items()):
        loaded = _load_merged(files, base, issues)
        if loaded is None:
            continue
        doc, root = loaded
        doc.value.setdefault("name", name)
        campaign = _validate(CampaignConfig, doc, root, issues)
        if campaign is not None:
            campaigns[campaign.name] = campaign
    return campaigns


def _campaign_name(file: Path) -> str:
    """The campaign a file belongs to: its ``name:`` key, else the file stem."""
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return file.stem  # the real read reports the problem with its line
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) else file.stem


def load_config(directory: str | Path) -> Config:
    """Load and validate a configuration directory, or raise `ConfigError` listing everything
    wrong with it (all files are checked, not just up to the first problem)."""
    directory = Path(directory)
    issues: list[ConfigIssue] = []
    main = directory / "dialerd.yaml"
    if not main.is_file():
        raise ConfigError(
            [ConfigIssue(_display(main, directory), 1, "", "file not found; expected dialerd.yaml")]
        )
    daemon: DaemonConfig | None = None
    loaded = _load_merged([main, *_yaml_files(directory / "dialerd.d")], directory, issues)
    if loaded is not None:
        doc, root = loaded
        daemon = _validate(DaemonConfig, doc, root, issues)
    campaigns_dir = directory / (daemon.campaigns_dir if daemon else "campaigns")
    campaigns = load_campaigns(campaigns_dir, issues, base=directory)
    if issues or daemon is None:
        raise ConfigError(issues)
    return Config(directory=directory, daemon=daemon, campaigns=campaigns)
