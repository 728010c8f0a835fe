"""Structured model output: parse, repair, and check against a JSON schema.

vLLM's guided decoding makes schema-valid output the norm, but not a guarantee
(``max_tokens`` cuts an answer, a fallback endpoint may ignore
``response_format``, a proxy may wrap it in prose or code fences). So every
answer is parsed here: local repairs first (fences, text around the object,
trailing commas), then a check against the schema with ``jsonschema`` (every
keyword of the 2020-12 draft, so a schema never says more than is checked).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator

from osmose.models.exceptions import ModelOutputError

__all__ = ["parse_json_answer", "schema_errors"]

_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
# jsonschema's messages quote the offending value, which may be the whole answer
_MAX_MESSAGE_CHARS = 200


def schema_errors(value: Any, schema: Mapping[str, Any], *, limit: int = 10) -> list[str]:
    """What is wrong with `value` under `schema` (empty when it conforms), at most `limit`
    lines of ``<JSON path>: <jsonschema's message>``."""
    errors: list[str] = []
    for error in Draft202012Validator(schema).iter_errors(value):
        if len(errors) >= limit:
            break
        errors.append(f"{error.json_path}: {error.message[:_MAX_MESSAGE_CHARS]}")
    return errors


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
