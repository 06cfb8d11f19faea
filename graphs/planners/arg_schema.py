"""The subset of JSON Schema that tool schemas use, for checking a model's arguments.

``check_value`` validates one value against a property schema (``$ref``, ``anyOf``, arrays,
objects, numbers, strings, booleans, null) with the safe coercions small models need; it raises
``SchemaError`` naming the path and what was expected. ``type_name`` and ``kind_of`` render a
schema and a value for those messages.
"""

from __future__ import annotations

import math
from typing import Any


class SchemaError(ValueError):
    """A value that does not fit its schema; the message names the path and the expectation."""


def check_value(
    value: Any, schema: dict[str, Any], root: dict[str, Any], path: str, coerce: bool = True
) -> Any:
    if "$ref" in schema:
        schema = _resolve_ref(schema["$ref"], root)
    for sub in schema.get("allOf", []):
        value = check_value(value, sub, root, path, coerce)
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if alternatives:
        # An alternative that takes the value as it is wins over one that needs a coercion.
        errors: list[tuple[dict[str, Any], SchemaError]] = []
        for strict in (True, False) if coerce else (True,):
            for alt in alternatives:
                try:
                    return check_value(value, alt, root, path, coerce=not strict)
                except SchemaError as exc:
                    errors.append((alt, exc))
        # When the value has the type of one alternative, its error is the informative one
        # ("spans[0] is missing key 'end_s'" rather than "must be array or null").
        kind = _json_type(value)
        kinds = {kind, "number"} if kind == "integer" else {kind}
        same_type = [exc for alt, exc in errors if alt.get("type") in kinds]
        if same_type:
            raise same_type[-1]
        expected = " or ".join(type_name(a) for a in alternatives)
        raise SchemaError(f"{path!r} must be {expected}, got {kind_of(value)}")
    if "const" in schema and value != schema["const"]:
        raise SchemaError(f"{path!r} must be {schema['const']!r}, got {value!r}")
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaError(f"{path!r} must be one of {schema['enum']}, got {value!r}")
    types = schema.get("type")
    if types is None:
        return value
    candidates = [types] if isinstance(types, str) else list(types)
    for strict in (True, False) if coerce else (True,):
        for t in candidates:
            ok, coerced = _coerce(value, t, coerce=not strict)
            if ok:
                return _check_inner(coerced, t, schema, root, path)
    raise SchemaError(f"{path!r} must be {type_name(schema)}, got {kind_of(value)}")


def _coerce(value: Any, t: str, coerce: bool) -> tuple[bool, Any]:
    if t == "null":
        return value is None, None
    if t == "boolean":
        if isinstance(value, bool):
            return True, value
        if coerce and isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return True, value.strip().lower() == "true"
        return False, value
    if t in ("number", "integer"):
        if isinstance(value, bool):
            return False, value
        num: Any = value
        if isinstance(value, str):
            if not coerce:
                return False, value
            try:
                num = float(value.strip())
            except ValueError:
                return False, value
        if not isinstance(num, (int, float)) or not math.isfinite(num):
            return False, value
        if t == "integer":
            if isinstance(num, float):
                if not (num.is_integer() and coerce):
                    return False, value
                num = int(num)
            return True, num
        return True, num
    if t == "string":
        return isinstance(value, str), value
    if t == "array":
        return isinstance(value, list), value
    if t == "object":
        return isinstance(value, dict), value
    return True, value


def _check_inner(
    value: Any, t: str, schema: dict[str, Any], root: dict[str, Any], path: str
) -> Any:
    if t in ("number", "integer"):
        lo, hi = schema.get("minimum"), schema.get("maximum")
        if lo is not None and value < lo:
            raise SchemaError(f"{path!r} must be >= {lo}, got {value}")
        if hi is not None and value > hi:
            raise SchemaError(f"{path!r} must be <= {hi}, got {value}")
        return value
    if t == "array":
        n_min, n_max = schema.get("minItems"), schema.get("maxItems")
        if n_min is not None and len(value) < n_min:
            raise SchemaError(f"{path!r} needs at least {n_min} items, got {len(value)}")
        if n_max is not None and len(value) > n_max:
            raise SchemaError(f"{path!r} takes at most {n_max} items, got {len(value)}")
        prefix = schema.get("prefixItems", [])
        items = schema.get("items")
        out = []
        for k, item in enumerate(value):
            sub = prefix[k] if k < len(prefix) else items
            out.append(
                check_value(item, sub, root, f"{path}[{k}]") if isinstance(sub, dict) else item
            )
        return out
    if t == "object":
        props: dict[str, Any] = schema.get("properties", {})
        missing = [r for r in schema.get("required", []) if r not in value]
        if missing:
            raise SchemaError(f"{path!r} is missing key(s) {', '.join(map(repr, missing))}")
        if schema.get("additionalProperties") is False:
            extra = [k for k in value if k not in props]
            if extra:
                raise SchemaError(f"{path!r} has unknown key(s) {', '.join(map(repr, extra))}")
        return {
            k: check_value(v, props[k], root, f"{path}.{k}") if k in props else v
            for k, v in value.items()
        }
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def _resolve_ref(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    node: Any = root
    for part in ref.lstrip("#/").split("/"):
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        raise SchemaError(f"unresolvable schema reference {ref!r}")
    return node


def type_name(schema: dict[str, Any]) -> str:
    if "anyOf" in schema or "oneOf" in schema:
        return " or ".join(type_name(s) for s in schema.get("anyOf") or schema.get("oneOf") or [])
    if "enum" in schema:
        return "one of " + ", ".join(map(repr, schema["enum"]))
    t = schema.get("type", "any value")
    if isinstance(t, list):
        return " or ".join(t)
    if t == "array" and isinstance(schema.get("items"), dict):
        inner = type_name(schema["items"])
        return f"an array of {_PLURAL.get(inner, inner + ' items')}"
    return {
        "null": "null",
        "integer": "an integer",
        "number": "a number",
        "string": "a string",
        "boolean": "true/false",
        "object": "an object",
        "array": "an array",
    }.get(t, str(t))


_PLURAL = {
    "a string": "strings",
    "a number": "numbers",
    "an integer": "integers",
    "true/false": "booleans",
    "an object": "objects",
}


def kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {value}"
    if isinstance(value, (int, float)):
        return f"number {value}"
    if isinstance(value, str):
        short = value if len(value) <= 40 else value[:37] + "..."
        return f"string {short!r}"
    if isinstance(value, list):
        return f"an array of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
