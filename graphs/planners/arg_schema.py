"""The subset of JSON Schema that tool schemas use, for checking a model's arguments.

``check_value`` validates one value against a property schema (``$ref``, ``anyOf``, arrays,
objects, numbers, strings, booleans, null) with the safe coercions small models need; it raises
``SchemaError`` naming the path and what was expected. ``type_name`` and ``kind_of`` render a
schema and a value for those messages. ``action_schema`` builds the schema of one action for a
server's constrained decoding (``response_format``).
"""

from __future__ import annotations

import math
import re
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


# --------------------------------------------------------------------------------------------
# The constrained-output schema (``response_format``): one action per reply


#: Longest ``thought`` a constrained reply may write (characters): reasoning, not an essay.
THOUGHT_CHARS = 160
#: Longest string argument and most array items a constrained reply may write.
STRING_CHARS = 200
JUSTIFICATION_CHARS = 280
ARRAY_ITEMS = 6

_DROP_KEYS = ("title", "description", "default", "examples")


def inline_refs(schema: dict[str, Any], root: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """``schema`` with every local ``$ref`` replaced by its target (schemas for constrained
    decoding must stand alone: the action schema nests each tool's parameters)."""
    if depth > 20:
        raise SchemaError("schema references nest too deeply")
    if "$ref" in schema:
        target = _resolve_ref(schema["$ref"], root)
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        return inline_refs({**target, **rest}, root, depth + 1)
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "$defs" or key == "definitions":
            continue
        if isinstance(value, dict):
            out[key] = inline_refs(value, root, depth + 1)
        elif isinstance(value, list):
            out[key] = [
                inline_refs(v, root, depth + 1) if isinstance(v, dict) else v for v in value
            ]
        else:
            out[key] = value
    return out


def _bounded(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy without prose keys, with strings and arrays bounded and objects closed."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DROP_KEYS:
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: _bounded(sub) for name, sub in value.items()}
        elif isinstance(value, dict):
            out[key] = _bounded(value)
        elif isinstance(value, list):
            out[key] = [_bounded(v) if isinstance(v, dict) else v for v in value]
        else:
            out[key] = value
    kind = out.get("type")
    if kind == "string" and "enum" not in out:
        out.setdefault("maxLength", STRING_CHARS)
    if kind == "array":
        out.setdefault("maxItems", ARRAY_ITEMS)
    if kind == "object" and "properties" in out:
        out.setdefault("additionalProperties", False)
    return out


def action_schema(
    tools: list[tuple[str, dict[str, Any]]],
    evidence_ids: list[str] | None = None,
    boxes: list[list[float]] | None = None,
) -> dict[str, Any]:
    """The JSON schema of one action ``{"thought", "tool", "args"}`` over ``tools`` (name,
    parameter schema), for a server's constrained decoding.

    When ``evidence_ids`` is given, a ``justification`` must end by citing some of them,
    "(E1, E3)", and ``evidence_ids`` is left out: it is read from that citation
    (``cited_ids``), so a small model can neither cite evidence that does not exist nor list
    ids its justification does not cite. When ``boxes`` is given, ``box_xyxy`` must be one of
    them (for a model that cannot see the frame).
    """
    alternatives = []
    for name, params in tools:
        args = _bounded(inline_refs(params, params))
        args.setdefault("type", "object")
        args.setdefault("properties", {})
        args["additionalProperties"] = False
        if evidence_ids and "evidence_ids" in args["properties"]:
            args["properties"]["evidence_ids"] = {
                "type": "array",
                "items": {"enum": list(evidence_ids)},
                "minItems": 1,
                "maxItems": len(evidence_ids),
            }
        if evidence_ids and {"evidence_ids", "justification"} <= set(args["properties"]):
            # The justification must end by citing known ids, "... (E1, E3)"; the id list is
            # read from that citation (``cited_ids``), so the model does not write it twice.
            one = "(" + "|".join(re.escape(i) for i in evidence_ids) + ")"
            args["properties"]["justification"] = {
                "type": "string",
                "pattern": f'^[^()"\\\\]{{10,{JUSTIFICATION_CHARS}}} \\({one}(, {one})*\\)$',
            }
            del args["properties"]["evidence_ids"]
            args["required"] = [r for r in args.get("required", []) if r != "evidence_ids"]
        if boxes and "box_xyxy" in args["properties"]:
            # A model that cannot see the frame inspects one of the boxes it was given.
            args["properties"]["box_xyxy"] = {"enum": [list(b) for b in boxes]}
        alternatives.append(
            {
                "type": "object",
                "properties": {
                    "thought": {"type": "string", "maxLength": THOUGHT_CHARS},
                    "tool": {"const": name},
                    "args": args,
                },
                "required": ["thought", "tool", "args"],
                "additionalProperties": False,
            }
        )
    return alternatives[0] if len(alternatives) == 1 else {"anyOf": alternatives}


_CITATION = re.compile(r"\(((?:E\d+)(?:, E\d+)*)\)\s*$")


def cited_ids(justification: str) -> list[str]:
    """The evidence ids of the citation that ends a justification: "... (E1, E3)" -> E1, E3."""
    found = _CITATION.search(justification)
    return [i.strip() for i in found.group(1).split(",")] if found else []
