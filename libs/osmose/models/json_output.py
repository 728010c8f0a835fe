"""Structured model output: parse, repair, and check against a JSON schema.

vLLM's guided decoding makes schema-valid output the norm, but not a guarantee
(``max_tokens`` cuts an answer, a fallback endpoint may ignore
``response_format``, a proxy may wrap it in prose or code fences). So every
answer is parsed here: local repairs first (fences, text around the object,
trailing commas), then a check against the schema. The validator covers the
subset of JSON Schema the stages use (type, properties, required,
additionalProperties, items, enum, minLength/maxLength, minItems/maxItems,
minimum/maximum) — enough to catch what guided decoding would have prevented,
without a dependency for it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from osmose.models.exceptions import ModelOutputError

__all__ = ["parse_json_answer", "schema_errors"]

_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,),
    "integer": (int,), "number": (int, float), "null": (type(None),),
}


def schema_errors(value: Any, schema: Mapping[str, Any], path: str = "$", *, limit: int = 10) -> list[str]:
    """What is wrong with `value` under `schema` (empty when it conforms)."""
    errors: list[str] = []
    _check(value, schema, path, errors, limit)
    return errors


def _check(value: Any, schema: Mapping[str, Any], path: str, errors: list[str], limit: int) -> None:
    if len(errors) >= limit:
        return
    kind = schema.get("type")
    if kind is not None:
        kinds = [kind] if isinstance(kind, str) else list(kind)
        ok = any(isinstance(value, _TYPES[k]) and not (k in ("integer", "number") and isinstance(value, bool))
                 for k in kinds)
        if not ok:
            errors.append(f"{path}: expected {'/'.join(kinds)}, got {type(value).__name__}")
            return
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of {list(schema['enum'])}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{path}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{path}: longer than {schema['maxLength']}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path}: below {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path}: above {schema['maximum']}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{path}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{path}: more than {schema['maxItems']} items")
        items = schema.get("items")
        if isinstance(items, Mapping):
            for i, element in enumerate(value):
                _check(element, items, f"{path}[{i}]", errors, limit)
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{path}: missing {name!r}")
        if schema.get("additionalProperties") is False:
            for name in value:
                if name not in properties:
                    errors.append(f"{path}: unexpected {name!r}")
        for name, sub in properties.items():
            if name in value:
                _check(value[name], sub, f"{path}.{name}", errors, limit)


def _candidates(text: str) -> list[str]:
    text = text.strip()
    out = [text]
    unfenced = _FENCE.sub("", text).strip()
    if unfenced != text:
        out.append(unfenced)
    start, end = unfenced.find("{"), unfenced.rfind("}")
    if 0 <= start < end:
        out.append(unfenced[start:end + 1])
    out.extend(_TRAILING_COMMA.sub(r"\1", c) for c in list(out))
    return list(dict.fromkeys(out))


def parse_json_answer(text: str, schema: Mapping[str, Any]) -> Any:
    """The JSON value in a model's answer, checked against `schema`.

    Raises :class:`ModelOutputError` saying what is wrong (for a repair prompt)."""
    last_error = "no JSON object in the answer"
    for candidate in _candidates(text):
        try:
            value = json.loads(candidate)
        except ValueError as exc:
            last_error = f"invalid JSON: {exc}"
            continue
        errors = schema_errors(value, schema)
        if not errors:
            return value
        last_error = "does not match the schema: " + "; ".join(errors)
    raise ModelOutputError(last_error)
