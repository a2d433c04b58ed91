"""User config: JSON or YAML files, ``${ENV_VAR}`` substitution, validation against a spec.

Validation errors name the field and what is wrong with it, and never echo the value of a field
the spec marks ``airbyte_secret``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import orjson
import yaml
from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError

from framework.errors import REDACT, ConfigError

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def load_file(path: str | Path, what: str = "config") -> Any:
    """Read a JSON or YAML file (chosen by content: JSON is tried first)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {what} file {path}: {exc.strerror}") from None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{what} file {path} is neither JSON nor YAML{where}: "
                          f"{getattr(exc, 'problem', exc)}") from None


def substitute_env(value: Any, path: str = "") -> Any:
    """Replace ``${NAME}`` in every string with the environment variable NAME."""
    if isinstance(value, dict):
        return {k: substitute_env(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_env(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ConfigError(f"config field '{path}' refers to ${{{name}}}, but the "
                                  f"environment variable {name} is not set; export it first")
            return os.environ[name]
        return _ENV_REF.sub(replace, value)
    return value


def secret_fields(schema: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of the properties marked ``airbyte_secret`` (``[]`` marks list items)."""
    found = []
    for name, prop in (schema.get("properties") or {}).items():
        path = f"{prefix}{name}"
        if prop.get("airbyte_secret"):
            found.append(path)
        if prop.get("type") == "object":
            found.extend(secret_fields(prop, path + "."))
        if prop.get("type") == "array" and isinstance(prop.get("items"), dict):
            found.extend(secret_fields(prop["items"], path + "[]."))
    return found


def _values_at(node: Any, parts: list[str]) -> list[Any]:
    if not parts:
        return [node]
    head, rest = parts[0], parts[1:]
    if head.endswith("[]"):
        items = node.get(head[:-2]) if isinstance(node, dict) else None
        return [v for item in (items if isinstance(items, list) else [])
                for v in _values_at(item, rest)]
    return _values_at(node.get(head), rest) if isinstance(node, dict) else []


def secret_values(config: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """The values of the config's secret fields (for redaction)."""
    return [v for path in secret_fields(schema) for v in _values_at(config, path.split("."))
            if isinstance(v, str)]


def _is_secret(path: list[Any], secrets: set[str]) -> bool:
    """Whether a jsonschema error path (``stores``, 0, ``access_token``) is a secret field."""
    dotted = ".".join(f"{p}" if isinstance(p, str) else "[]" for p in path).replace(".[]", "[]")
    return dotted in secrets

def _describe(error: ValidationError, secret: bool) -> str:
    """One clause for one jsonschema error, without the value when it is secret."""
    kind, expected, schema = error.validator, error.validator_value, error.schema
    shown = "" if secret else f" (got {error.instance!r})"
    if kind == "type":
        return f"must be of type {expected}{shown}"
    if kind == "enum":
        return f"must be one of {', '.join(map(str, expected))}{shown}"
    if kind == "pattern":
        return f"{schema.get('pattern_descriptor') or 'must match ' + expected}{shown}"
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        words = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">",
                 "exclusiveMaximum": "<"}
        return f"must be {words[kind]} {expected}{shown}"
    if kind in ("minLength", "maxLength"):
        return f"must be {'at least' if kind == 'minLength' else 'at most'} {expected} characters"
    if kind == "format":
        return f"must be a valid {expected}{shown}"
    if kind in ("anyOf", "oneOf"):
        return schema.get(f"{kind}_descriptor") or error.message
    return "is invalid" if secret else error.message


def validate_config(config: Any, schema: dict[str, Any], connector: str) -> dict[str, Any]:
    """Validate ``config`` against a connection spec; one ConfigError lists every problem."""
    if not isinstance(config, dict):
        raise ConfigError(f"{connector} config must be a mapping of fields, "
                          f"got {type(config).__name__}")
    REDACT.add(secret_values(config, schema))
    secrets = set(secret_fields(schema))
    problems = []
    validator = Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)
    for error in sorted(validator.iter_errors(config), key=lambda e: list(e.path)):
        field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.path)
        field = field.lstrip(".")
        if error.validator in ("anyOf", "oneOf") and not field:
            problems.append(f"config {_describe(error, True)}")
        elif error.validator == "required":
            missing = error.message.split("'")[1]
            name = f"{field}.{missing}" if field else missing
            problems.append(f"'{name}' is required")
        elif error.validator == "additionalProperties":
            allowed = sorted(error.schema.get("properties") or {})
            extra = sorted(set(error.instance) - set(allowed))
            where = f" in '{field}'" if field else ""
            problems.append(f"unknown field{'s' if len(extra) > 1 else ''} "
                            f"{', '.join(repr(e) for e in extra)}{where} "
                            f"(valid: {', '.join(allowed)})")
        else:
            problems.append(f"'{field}' {_describe(error, _is_secret(list(error.path), secrets))}")
    if problems:
        raise ConfigError(f"invalid {connector} config: " + "; ".join(problems))
    return config


def apply_defaults(config: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Fill the schema's defaults for the top-level fields the config leaves out."""
    for name, prop in (schema.get("properties") or {}).items():
        if name not in config and "default" in prop:
            config[name] = prop["default"]
    return config


def load_config(path: str | Path, schema: dict[str, Any], connector: str) -> dict[str, Any]:
    """Read, substitute and validate a config file; fills schema defaults for missing fields."""
    config = substitute_env(load_file(path))
    validate_config(config, schema, connector)
    return apply_defaults(config, schema)
