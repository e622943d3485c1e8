"""Checks values against the lexicon documents, the way ATProto's own validators do.

Every function returns a new dict with schema defaults filled in and raises only
``LexiconValidationError`` for a bad value, whatever its shape. Fields a schema does
not name are kept as they are, since ATProto lets records and inputs grow new fields.
``knownValues`` is open too: a value outside the list passes, and each consumer decides
what an unknown value means (for ``policy``: the most restrictive known policy).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kernel.lexicon.catalog import full_ref, main_def, resolve_ref
from kernel.lexicon.errors import LexiconValidationError, join_path
from kernel.lexicon.formats import FORMATS

_INTEGER_TEXT_DIGITS = 19  # enough for any lexicon integer; stops int() on huge inputs


def validate_record(nsid: str, value: object) -> dict[str, Any]:
    """A record of collection ``nsid``, with defaults applied."""
    definition = main_def(nsid, "record")
    if not isinstance(value, dict):
        raise LexiconValidationError("", "record must be an object")
    declared = value.get("$type")
    if declared is not None and declared != nsid:
        raise LexiconValidationError("$type", f"must be {nsid!r}")
    return _as_dict(_check(definition["record"], value, "", nsid))


def validate_input(nsid: str, body: object) -> dict[str, Any]:
    """The JSON body of procedure ``nsid``, with defaults applied."""
    definition = main_def(nsid, "procedure")
    if not isinstance(body, dict):
        raise LexiconValidationError("", "input must be a JSON object")
    return _as_dict(_check(definition["input"]["schema"], body, "", nsid))


def validate_output(nsid: str, body: object) -> dict[str, Any]:
    """The JSON answer of query or procedure ``nsid`` (for tests and for reading other services)."""
    definition = main_def(nsid, "query", "procedure")
    if not isinstance(body, dict):
        raise LexiconValidationError("", "output must be a JSON object")
    return _as_dict(_check(definition["output"]["schema"], body, "", nsid))


def validate_def(ref: str, value: object, path: str = "") -> Any:
    """``value`` against one def, e.g. ``com.huddle.defs#preferences``; ``path`` prefixes error paths."""
    nsid, _, definition = resolve_ref(ref, "")
    return _check(definition, value, path, nsid)


def validate_params(nsid: str, params: Mapping[str, str | list[str]]) -> dict[str, Any]:
    """Query parameters of ``nsid`` as they arrive (text, repeated keys as lists), typed.

    Integers and booleans are parsed from their text, defaults applied; parameters the
    lexicon does not name are left out of the result.
    """
    definition = main_def(nsid, "query")
    if not isinstance(params, Mapping):
        raise LexiconValidationError("", "parameters must be a mapping")
    schema = definition.get("parameters", {})
    required = schema.get("required", ())
    result: dict[str, Any] = {}
    for key, prop in schema.get("properties", {}).items():
        raw = params.get(key)
        if raw is None or raw == []:
            if key in required:
                raise LexiconValidationError(key, "is required")
            if "default" in prop:
                result[key] = prop["default"]
            continue
        typed: object
        if prop["type"] == "array":
            values = raw if isinstance(raw, list) else [raw]
            typed = [_parse_param(prop["items"], v, f"{key}[{i}]") for i, v in enumerate(values)]
        else:
            if isinstance(raw, list):
                if len(raw) != 1:
                    raise LexiconValidationError(key, "must be given once")
                raw = raw[0]
            typed = _parse_param(prop, raw, key)
        result[key] = _check(prop, typed, key, nsid)
    return result


def _parse_param(schema: Mapping[str, Any], raw: object, path: str) -> object:
    if not isinstance(raw, str):
        raise LexiconValidationError(path, "must be text")
    kind = schema["type"]
    if kind == "integer":
        digits = raw[1:] if raw.startswith("-") else raw
        if not (0 < len(digits) <= _INTEGER_TEXT_DIGITS and digits.isascii() and digits.isdigit()):
            raise LexiconValidationError(path, "must be an integer")
        return int(raw)
    if kind == "boolean":
        if raw not in ("true", "false"):
            raise LexiconValidationError(path, "must be 'true' or 'false'")
        return raw == "true"
    return raw


def _as_dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError("lexicon schema of a record, input or output must describe an object")
    return value


def _check(schema: Mapping[str, Any], value: object, path: str, nsid: str) -> Any:
    kind = schema["type"]
    if kind == "object":
        return _check_object(schema, value, path, nsid)
    if kind == "array":
        return _check_array(schema, value, path, nsid)
    if kind == "string":
        return _check_string(schema, value, path)
    if kind == "integer":
        return _check_integer(schema, value, path)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise LexiconValidationError(path, "must be a boolean")
        _check_const(schema, value, path)
        return value
    if kind == "ref":
        target_nsid, _, target = resolve_ref(schema["ref"], nsid)
        return _check(target, value, path, target_nsid)
    if kind == "union":
        return _check_union(schema, value, path, nsid)
    if kind == "unknown":
        # The data model's "unknown" is any object; its contents are not ours to judge.
        if not isinstance(value, dict):
            raise LexiconValidationError(path, "must be an object")
        return value
    if kind == "null":
        if value is not None:
            raise LexiconValidationError(path, "must be null")
        return value
    if kind in ("blob", "bytes", "cid-link"):
        if not isinstance(value, dict):
            raise LexiconValidationError(path, f"must be a {kind} object")
        return value
    raise TypeError(f"lexicon type {kind!r} cannot describe a value (at {path or 'top level'})")


def _check_object(schema: Mapping[str, Any], value: object, path: str, nsid: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise LexiconValidationError(path, "must be an object")
    for key in schema.get("required", ()):
        if key not in value:
            raise LexiconValidationError(join_path(path, key), "is required")
    nullable = schema.get("nullable", ())
    result = dict(value)
    for key, prop in schema.get("properties", {}).items():
        child = join_path(path, key)
        if key not in value:
            if "default" in prop:
                result[key] = prop["default"]
            continue
        item = value[key]
        if item is None:
            if key in nullable:
                continue
            raise LexiconValidationError(child, "must not be null")
        result[key] = _check(prop, item, child, nsid)
    return result


def _check_array(schema: Mapping[str, Any], value: object, path: str, nsid: str) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise LexiconValidationError(path, "must be an array")
    if len(value) < schema.get("minLength", 0):
        raise LexiconValidationError(path, f"must have at least {schema['minLength']} items")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        raise LexiconValidationError(path, f"must have at most {schema['maxLength']} items")
    items = schema["items"]
    return [_check(items, item, f"{path}[{i}]", nsid) for i, item in enumerate(value)]


def _check_string(schema: Mapping[str, Any], value: object, path: str) -> str:
    if not isinstance(value, str):
        raise LexiconValidationError(path, "must be a string")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        # Lone surrogates come through JSON's \ud800 escapes; they are not text.
        raise LexiconValidationError(path, "must be valid Unicode text") from None
    # Lexicon lengths count UTF-8 bytes; graphemes are what people see as characters.
    if size < schema.get("minLength", 0):
        raise LexiconValidationError(path, f"must be at least {schema['minLength']} bytes long")
    if "maxLength" in schema and size > schema["maxLength"]:
        raise LexiconValidationError(path, f"must be at most {schema['maxLength']} bytes long")
    if "minGraphemes" in schema and grapheme_count(value) < schema["minGraphemes"]:
        raise LexiconValidationError(path, f"must be at least {schema['minGraphemes']} characters long")
    if "maxGraphemes" in schema and len(value) > schema["maxGraphemes"]:
        # Only then can there be too many: a grapheme holds at least one code point.
        if grapheme_count(value) > schema["maxGraphemes"]:
            raise LexiconValidationError(path, f"must be at most {schema['maxGraphemes']} characters long")
    _check_const(schema, value, path)
    if "enum" in schema and value not in schema["enum"]:
        raise LexiconValidationError(path, f"must be one of {', '.join(schema['enum'])}")
    kind = schema.get("format")
    if kind is not None and not FORMATS[kind](value):
        raise LexiconValidationError(path, f"must be a valid {kind}")
    return value


def _check_integer(schema: Mapping[str, Any], value: object, path: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise LexiconValidationError(path, "must be an integer")
    if "minimum" in schema and value < schema["minimum"]:
        raise LexiconValidationError(path, f"must be at least {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        raise LexiconValidationError(path, f"must be at most {schema['maximum']}")
    _check_const(schema, value, path)
    if "enum" in schema and value not in schema["enum"]:
        raise LexiconValidationError(path, f"must be one of {', '.join(map(str, schema['enum']))}")
    return value


def _check_const(schema: Mapping[str, Any], value: object, path: str) -> None:
    if "const" in schema and value != schema["const"]:
        raise LexiconValidationError(path, f"must be {schema['const']!r}")


def _check_union(schema: Mapping[str, Any], value: object, path: str, nsid: str) -> Any:
    if not isinstance(value, dict):
        raise LexiconValidationError(path, "must be an object")
    declared = value.get("$type")
    if not isinstance(declared, str):
        raise LexiconValidationError(join_path(path, "$type"), "is required")
    refs = {full_ref(ref, nsid): ref for ref in schema["refs"]}
    if declared in refs:
        target_nsid, _, target = resolve_ref(refs[declared], nsid)
        return _check(target, value, path, target_nsid)
    if schema.get("closed", False):
        raise LexiconValidationError(join_path(path, "$type"), f"must be one of {', '.join(refs)}")
    return value


def grapheme_count(text: str) -> int:
    """User-perceived characters (extended grapheme clusters) in ``text``."""
    # Imported here: the third-party `regex` extension is needed only when counting.
    import regex

    return len(regex.findall(r"\X", text))
