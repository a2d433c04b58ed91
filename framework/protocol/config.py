"""User config: JSON or YAML files, ``${ENV_VAR}`` substitution, validation against a spec.

Validation errors name the field and what is wrong with it, and never echo the value of a field
the spec marks ``airbyte_secret``.

Unknown keys: Airbyte forbids ``additionalProperties: false`` in a published spec (a config saved
by a newer version must still load in an older one), so the specs do not say it, and a typo is
caught here instead (:func:`unknown_fields`): an error in ``runner``, a warning in the Airbyte
CLI (``framework/plugins/airbyte.py``), each naming the key and the valid ones.

Secrets (the fields a spec marks ``airbyte_secret``): surrounding whitespace is stripped (a
file-mounted Kubernetes secret ends with a newline, which no API accepts in a header), and a
control character inside one is an error. Every value that may be a secret is given to
:data:`~framework.errors.REDACT` before anything can print it, including values in the wrong
place (a mapping where a list of stores is expected, a string where a section is): the strings
found under a secret's name anywhere, or where a secret's parent should be, and the credentials
and query values of a URL. An error shows a field's value only when it is a plain value that
cannot hold a secret (see :func:`_shown`).

YAML aliases (``*name``) are refused: a file of a few hundred bytes can alias its way to
billions of nodes (the "billion laughs"), which ``${VAR}`` substitution would build out.

Choices: a root property whose ``oneOf`` variants are objects told apart by a ``const`` field
(the discriminator, e.g. ``store_setup.mode``) is how Airbyte's form shows "one of these"; the
connector reads the chosen variant's fields at the config's root, so they are lifted there once
the config is valid (:func:`lift_choices`). A config written before the choice existed (its fields
at the root, no discriminator) is understood (:func:`prepare_choices`): its fields move into the
choice and the discriminator is inferred from the variant whose required fields are all there.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import yaml
from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError

from framework.errors import REDACT, ConfigError

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _NoAliasLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing aliases (see the module doc)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ConfigError(f"line {event.start_mark.line + 1}: YAML aliases (*{event.anchor})"
                              " are not accepted in a config (they can multiply it beyond "
                              "memory); write the value out in full")
        return super().compose_node(parent, index)


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
        return yaml.load(text, Loader=_NoAliasLoader)  # a SafeLoader without aliases
    except ConfigError as exc:
        raise ConfigError(f"{what} file {path} {exc.message}") from None
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


def _properties(schema: dict[str, Any]) -> dict[str, Any]:
    """An object schema's properties, those of its ``oneOf`` variants included."""
    found = dict(schema.get("properties") or {})
    for variant in schema.get("oneOf") or []:
        if isinstance(variant, dict):
            found.update(variant.get("properties") or {})
    return found


def choices(schema: dict[str, Any]) -> dict[str, tuple[str, list[dict[str, Any]]]]:
    """The root properties that are a choice: name -> (discriminator, variants)."""
    found = {}
    for name, prop in (schema.get("properties") or {}).items():
        variants = prop.get("oneOf") if isinstance(prop, dict) else None
        if not variants or not all(isinstance(v, dict) for v in variants):
            continue
        consts = [{k for k, p in (v.get("properties") or {}).items() if "const" in p}
                  for v in variants]
        shared = set.intersection(*consts)
        if len(shared) == 1:
            found[name] = (shared.pop(), variants)
    return found


def _chosen(block: dict[str, Any], key: str, variants: list[dict[str, Any]]
            ) -> dict[str, Any] | None:
    """The variant whose discriminator ``key`` equals the block's."""
    return next((v for v in variants if key in block
                 and v["properties"][key]["const"] == block[key]), None)


def config_fields(schema: dict[str, Any]) -> set[str]:
    """The fields a connector finds at the root of a loaded config (choices lifted)."""
    fields = set(schema.get("properties") or {})
    for name, (key, variants) in choices(schema).items():
        fields.discard(name)
        fields |= {k for v in variants for k in v.get("properties") or {}} - {key}
    return fields


def prepare_choices(config: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A config from before a choice existed, in the choice's layout (see the module doc):
    its fields move into the choice, and the discriminator is inferred when it is missing and
    exactly one variant has all its required fields."""
    for name, (key, variants) in choices(schema).items():
        if name not in config:
            fields = {k for v in variants for k in v.get("properties") or {}} - {key}
            moved = {k: config.pop(k) for k in list(config) if k in fields}
            if moved:
                config[name] = moved
        block = config.get(name)
        if isinstance(block, dict) and key not in block:
            fitting = [v for v in variants
                       if all(r in block for r in v.get("required", []) if r != key)]
            if len(fitting) == 1:
                block[key] = fitting[0]["properties"][key]["const"]
    return config


def lift_choices(config: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The chosen variant's fields at the config's root, where the connector reads them."""
    for name, (key, _) in choices(schema).items():
        block = config.pop(name, None)
        if isinstance(block, dict):
            config.update({k: v for k, v in block.items() if k != key})
    return config


def unknown_fields(config: Any, schema: dict[str, Any], where: str = "") -> list[str]:
    """One message per key the spec does not declare, naming it and the valid ones.

    Objects whose schema says nothing of their keys (no ``properties``, or
    ``additionalProperties`` as a schema, e.g. a mapping) take any key; an object that still
    says ``additionalProperties: false`` (the sync config's own layout) is left to jsonschema.
    """
    found: list[str] = []
    if isinstance(config, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(config):
            found += unknown_fields(item, schema["items"], f"{where}[{index}]")
        return found
    if not isinstance(config, dict) or not isinstance(schema, dict):
        return found
    props = dict(schema.get("properties") or {})
    for variant in schema.get("oneOf") or []:
        if isinstance(variant, dict):
            props.update(variant.get("properties") or {})
    if name_choice := choices({"properties": {"x": schema}}).get("x"):
        variant = _chosen(config, name_choice[0], name_choice[1])
        if variant is not None:  # the other variants' fields do not belong here
            props = {**(schema.get("properties") or {}), **variant["properties"]}
    checked = props and schema.get("additionalProperties") in (None, True)
    extra = sorted(set(config) - set(props)) if checked else []
    for key in extra:
        inside = f" in '{where}'" if where else ""
        found.append(f"unknown field {key!r}{inside} (valid: {', '.join(sorted(props))})")
    for key, value in config.items():
        if key in props and isinstance(props[key], dict):
            found += unknown_fields(value, props[key], f"{where}.{key}" if where else key)
    return found


def secret_fields(schema: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of the properties marked ``airbyte_secret`` (``[]`` marks list items)."""
    found = []
    for name, prop in _properties(schema).items():
        path = f"{prefix}{name}"
        if prop.get("airbyte_secret"):
            found.append(path)
        if prop.get("type") == "object":
            found.extend(secret_fields(prop, path + "."))
        if prop.get("type") == "array" and isinstance(prop.get("items"), dict):
            found.extend(secret_fields(prop["items"], path + "[]."))
    return found


def _slots(node: Any, parts: list[str], where: str = "") -> Iterator[tuple[Any, Any, str]]:
    """(container, key, field name) of each value at a dotted secret path."""
    head, rest = parts[0], parts[1:]
    name = head[:-2] if head.endswith("[]") else head
    if not isinstance(node, dict) or name not in node:
        return
    field = f"{where}.{name}" if where else name
    if not head.endswith("[]"):
        if rest:
            yield from _slots(node[name], rest, field)
        else:
            yield node, name, field
        return
    items = node[name]
    for index, item in enumerate(items if isinstance(items, list) else []):
        yield from _slots(item, rest, f"{field}[{index}]")


def clean_secrets(config: Any, schema: dict[str, Any]) -> None:
    """Strip the whitespace around each secret; a control character inside one is an error
    naming the field (never the value)."""
    for path in secret_fields(schema):
        for container, key, field in _slots(config, path.split(".")):
            value = container[key]
            if not isinstance(value, str):
                continue
            container[key] = value = value.strip()
            bad = next((c for c in value if unicodedata.category(c) == "Cc"), None)
            if bad is not None:
                raise ConfigError(
                    f"'{field}' has a control character (U+{ord(bad):04X}) inside it; a secret "
                    "is one line without tabs or line breaks: check the file or environment "
                    "variable it comes from")


def _strings(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    """Every string in a config with its path (list indexes as ``[]``)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, (*path, str(key)))
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value, (*path, "[]"))
    elif isinstance(node, str):
        yield path, node


def _url_secrets(value: str) -> list[str]:
    """The credentials and query values of a URL (``https://user:token@host/?key=...``)."""
    if "://" not in value:
        return []
    try:
        url = urlsplit(value.strip())
        found = [url.username or "", url.password or ""]
    except ValueError:
        return []
    return found + [v for _, v in parse_qsl(url.query)]


def secret_values(config: Any, schema: dict[str, Any]) -> list[str]:
    """The values that may be secrets, for redaction: those of the secret fields and, should
    the config have the wrong shape, any string under a secret's name or in place of a
    secret's parent (``destination: ${API_KEY}``), and a URL's credentials and query values."""
    paths = [tuple(part.removesuffix("[]") for part in p.split("."))
             for p in secret_fields(schema)]
    names = {p[-1] for p in paths}
    parents = {p[:-1] for p in paths}
    found = []
    for path, value in _strings(config):
        plain = tuple(p for p in path if p != "[]")
        if plain in parents or names & set(plain):
            found.append(value)
        found += _url_secrets(value)
    return found


def _is_secret(path: list[Any], secrets: set[str]) -> bool:
    """Whether a jsonschema error path (``stores``, 0, ``access_token``) is a secret field or
    a field that holds one (its value could be a secret in the wrong place)."""
    dotted = ".".join(f"{p}" if isinstance(p, str) else "[]" for p in path).replace(".[]", "[]")
    return any(s == dotted or s.startswith(dotted + ".") or s.startswith(dotted + "[]")
               for s in secrets)


def _shown(value: Any, secret: bool) -> str:
    """``(got VALUE)`` for a plain value that is not secret; a mapping or list may hold one (a
    store's token), so only its type is named, and a URL's credentials are masked."""
    if isinstance(value, (dict, list)):
        return f" (got {'a mapping' if isinstance(value, dict) else 'a list'})"
    if secret:
        return ""
    if isinstance(value, str) and any(_url_secrets(value)):
        return " (got a URL with credentials or a query: left out)"
    return f" (got {value!r})"


def _describe(error: ValidationError, secret: bool) -> str:
    """One clause for one jsonschema error, without the value when it is secret."""
    # The keyword's value is any JSON (jsonschema types it "Any | Unset", Unset being only
    # for errors made by hand); the failing schema is an object but for a boolean schema
    # (``false``), which fails with no keyword.
    expected: Any
    kind, expected = error.validator, error.validator_value
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    shown = _shown(error.instance, secret)
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
    if kind in ("anyOf", "oneOf"):  # jsonschema's own message prints the value
        return schema.get(f"{kind}_descriptor") or "matches none of the forms it can take"
    return "is invalid" if secret else error.message


def _errors(schema: dict[str, Any], instance: Any, at: tuple[Any, ...] = ()
            ) -> list[tuple[tuple[Any, ...], ValidationError]]:
    """jsonschema's errors with their full paths; a failed choice (a ``oneOf`` told apart by
    a ``const`` field) gives the errors of the variant the instance chose, or of its
    discriminator, instead of jsonschema's "not valid under any" (which prints the value)."""
    found = []
    validator = Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)
    for error in validator.iter_errors(instance):
        path = (*at, *error.path)
        choice = choices({"properties": {"x": error.schema}}).get("x")
        if error.validator != "oneOf" or choice is None or not isinstance(error.instance, dict):
            found.append((path, error))
            continue
        key, variants = choice
        variant = _chosen(error.instance, key, variants)
        if variant is not None:
            found += _errors(variant, error.instance, path)
        elif key in error.instance:  # a discriminator no variant has: name the valid ones
            consts = [v["properties"][key]["const"] for v in variants]
            found += _errors({"properties": {key: {"enum": consts}}}, error.instance, path)
        else:  # none, and none could be inferred (prepare_choices): the choice's descriptor
            found.append((path, error))
    return found


def _problem(path: tuple[Any, ...], error: ValidationError, secrets: set[str]) -> str:
    """One clause for one error, naming the field."""
    field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    if error.validator in ("anyOf", "oneOf"):
        return f"{f'{field!r}' if field else 'config'} {_describe(error, True)}"
    if error.validator == "required":
        missing = error.message.split("'")[1]
        return f"'{f'{field}.{missing}' if field else missing}' is required"
    if error.validator == "additionalProperties":
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        allowed = sorted(schema.get("properties") or {})
        instance: Any = error.instance  # the object with the unknown keys
        extra = sorted(set(instance) - set(allowed))
        where = f" in '{field}'" if field else ""
        return (f"unknown field{'s' if len(extra) > 1 else ''} "
                f"{', '.join(repr(e) for e in extra)}{where} (valid: {', '.join(allowed)})")
    return f"'{field}' {_describe(error, _is_secret(list(path), secrets))}"


def validate_config(config: Any, schema: dict[str, Any], connector: str, *,
                    on_unknown: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Validate ``config`` against a connection spec; one ConfigError lists every problem.

    An unknown key is one of the problems, unless ``on_unknown`` is given: then it is told
    each one (the Airbyte CLI warns) and the key is ignored.
    """
    if not isinstance(config, dict):
        raise ConfigError(f"{connector} config must be a mapping of fields, "
                          f"got {type(config).__name__}")
    REDACT.add(secret_values(config, schema))
    clean_secrets(config, schema)
    secrets = set(secret_fields(schema))
    errors = sorted(_errors(schema, config), key=lambda found: [str(p) for p in found[0]])
    problems = [_problem(path, error, secrets) for path, error in errors]
    for unknown in unknown_fields(config, schema):
        if on_unknown is None:
            problems.append(unknown)
        else:
            on_unknown(unknown)
    if problems:
        raise ConfigError(f"invalid {connector} config: " + "; ".join(problems))
    return config


def apply_defaults(config: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Fill the schema's defaults for the top-level fields the config leaves out."""
    for name, prop in (schema.get("properties") or {}).items():
        if name not in config and "default" in prop:
            config[name] = prop["default"]
    return config


def load_config(path: str | Path, schema: dict[str, Any], connector: str, *,
                on_unknown: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Read, substitute and validate a config file; fills schema defaults for missing fields
    and lifts the choices (see the module doc)."""
    config = substitute_env(load_file(path))
    if isinstance(config, dict):
        prepare_choices(config, schema)
    validate_config(config, schema, connector, on_unknown=on_unknown)
    return lift_choices(apply_defaults(config, schema), schema)
