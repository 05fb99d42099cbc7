"""A connector's JSON Schemas as form fields, and a submitted form back as the API's JSON body.

A connector declares its ``config`` and ``credentials`` as pydantic models; `GET
/api/v1/connectors` publishes their JSON Schemas. The data-source form is built from those
schemas alone, so a third-party connector gets a form without a template of its own, and what
the form sends is the JSON body a script would send: the same schema and service check it, and
a refusal names a location (``config.pagination.cursor.size``) that :func:`locate` turns back
into the field the person typed in.

Field names are the JSON path from the section, dotted: ``config.property_id``,
``config.pagination.page.size`` (a variant's fields sit under its tag, as pydantic's error
locations put them). Secrets — every credential, and any field the schema marks ``writeOnly``
or ``format: password`` — are write-only: :func:`form_values` never gives their value back,
and :func:`parse` keeps the stored one when the field is left blank.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal[
    "text",  # a string
    "integer",
    "number",
    "checkbox",  # a boolean
    "choice",  # an enum (or a boolean that may be unset): a <select>
    "lines",  # an array of scalars: a textarea, one item per line
    "pairs",  # an object of scalars by name: a textarea, one `name=value` per line
    "json",  # anything else (a free-form object, a union of shapes): JSON in a textarea
    "group",  # an object with known properties: a fieldset of its own fields
    "union",  # objects told apart by a tag: a <select> of the tag, a fieldset per variant
    "const",  # a fixed value (a variant's tag): nothing to fill in
]
ItemKind = Literal["text", "integer", "number"]

#: Nesting deeper than this is edited as JSON (the API refuses deeper than 20 anyway).
MAX_DEPTH = 6
_NO_DEFAULT: Any = object()
_ACRONYMS = {"id": "ID", "url": "URL", "uri": "URI", "api": "API", "ip": "IP", "sql": "SQL"}
#: How an option that is whitespace reads in a <select>.
_SPECIAL_LABELS = {"\t": "tab", " ": "space", "": "(empty)"}


@dataclass(frozen=True)
class Variant:
    tag: str
    label: str
    fields: tuple[FormField, ...]


@dataclass(frozen=True)
class FormField:
    #: The form control's name: the section, then the JSON path, dotted.
    name: str
    #: The JSON property it fills.
    key: str
    label: str
    kind: Kind
    help: str = ""
    required: bool = False
    nullable: bool = False
    secret: bool = False
    default: Any = _NO_DEFAULT
    #: (value, label) of a choice, or of a union's tags.
    choices: tuple[tuple[str, str], ...] = ()
    #: The JSON values behind `choices`, in the same order.
    choice_values: tuple[Any, ...] = ()
    item_kind: ItemKind = "text"
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    children: tuple[FormField, ...] = ()
    variants: tuple[Variant, ...] = ()
    tag_key: str = ""
    const: Any = None

    @property
    def has_default(self) -> bool:
        return self.default is not _NO_DEFAULT

    @property
    def html_id(self) -> str:
        return "f-" + re.sub(r"[^A-Za-z0-9_-]", "-", self.name)

    @property
    def default_text(self) -> str:
        """The default as the field would show it; empty when there is none."""
        if not self.has_default or self.default is None:
            return ""
        return _to_text(self, self.default)

    @property
    def min_attr(self) -> str:
        return _attr_number(self.minimum)

    @property
    def max_attr(self) -> str:
        return _attr_number(self.maximum)

    @property
    def input_type(self) -> str:
        if self.secret:
            return "password"
        return "number" if self.kind in ("integer", "number") else "text"


def _attr_number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if value.is_integer() else repr(value)


def _deref(schema: Any, defs: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(schema, dict):
        return {}
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = defs.get(ref.removeprefix("#/$defs/"), {})
        return {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _label(key: str, title: Any) -> str:
    """The schema's title when a person wrote one; pydantic's generated one reads worse than
    the key itself ("Base Url"), so that is rebuilt with acronyms kept as acronyms."""
    generated = key.replace("_", " ").title()
    if isinstance(title, str) and title and title != generated:
        return title
    words = [_ACRONYMS.get(w.lower(), w) for w in key.split("_") if w]
    text = " ".join(words)
    return text[:1].upper() + text[1:] if text else key


def _scalar_kind(schema: Mapping[str, Any]) -> ItemKind | None:
    kind = schema.get("type")
    if kind == "string" or ("enum" in schema and "type" not in schema):
        return "text"
    if kind == "integer":
        return "integer"
    if kind == "number":
        return "number"
    if "anyOf" in schema and all(
        isinstance(b, dict) and b.get("type") in ("string", "integer", "number", "boolean")
        for b in schema["anyOf"]
    ):
        return "text"  # a string, number or boolean: the string is what a person types
    return None


def form_fields(
    schema: Mapping[str, Any], section: str, *, secret: bool = False
) -> list[FormField]:
    """The fields of an object schema (a connector's config or credentials), in its order."""
    defs = schema.get("$defs") or {}
    return list(_object_fields(dict(schema), section, defs, secret, 0))


def _object_fields(
    schema: dict[str, Any], prefix: str, defs: Mapping[str, Any], secret: bool, depth: int
) -> tuple[FormField, ...]:
    required = set(schema.get("required") or ())
    properties = schema.get("properties") or {}
    return tuple(
        _field(key, prop, f"{prefix}.{key}", key in required, defs, secret, depth)
        for key, prop in properties.items()
        if isinstance(key, str)
    )


def _field(
    key: str,
    prop: Any,
    name: str,
    required: bool,
    defs: Mapping[str, Any],
    secret: bool,
    depth: int,
) -> FormField:
    meta = _deref(prop, defs)
    core = meta
    nullable = False
    branches = meta.get("anyOf")
    if isinstance(branches, list):
        resolved = [_deref(b, defs) for b in branches]
        kept = [b for b in resolved if b.get("type") != "null"]
        nullable = len(kept) < len(resolved)
        if len(kept) == 1:
            core = kept[0]
        elif _scalar_kind({"anyOf": kept}) is None:
            core = {"anyOf": kept}
    secret = secret or any(
        s.get("writeOnly") is True or s.get("format") == "password" for s in (meta, core)
    )
    description = meta.get("description") or core.get("description") or ""
    common: dict[str, Any] = {
        "name": name,
        "key": key,
        "label": _label(key, meta.get("title")),
        "help": description if isinstance(description, str) else "",
        "required": required,
        "nullable": nullable,
        "secret": secret,
        "default": meta.get("default", _NO_DEFAULT),
    }
    if "const" in core:
        return FormField(kind="const", const=core["const"], **common)
    if isinstance(core.get("enum"), list) and core["enum"]:
        values = tuple(core["enum"])
        return FormField(
            kind="choice",
            choices=tuple(
                (_option(v), _SPECIAL_LABELS.get(_option(v), _option(v))) for v in values
            ),
            choice_values=values,
            **common,
        )
    union = _union(core, name, defs, secret, depth)
    if union is not None:
        tag_key, variants = union
        return FormField(
            kind="union",
            tag_key=tag_key,
            variants=variants,
            choices=tuple((v.tag, v.label) for v in variants),
            **common,
        )
    kind = core.get("type")
    if kind == "boolean":
        if nullable:
            return FormField(
                kind="choice",
                choices=(("true", "yes"), ("false", "no")),
                choice_values=(True, False),
                **common,
            )
        return FormField(kind="checkbox", **common)
    if kind in ("integer", "number"):
        return FormField(
            kind="integer" if kind == "integer" else "number",
            minimum=_bound(core, "minimum", "exclusiveMinimum"),
            maximum=_bound(core, "maximum", "exclusiveMaximum"),
            **common,
        )
    if kind == "string":
        limit = core.get("maxLength")
        return FormField(
            kind="text", max_length=limit if isinstance(limit, int) else None, **common
        )
    if kind == "array":
        item = _scalar_kind(_deref(core.get("items"), defs))
        if item is not None:
            return FormField(kind="lines", item_kind=item, **common)
        return FormField(kind="json", **common)
    if kind == "object" and depth < MAX_DEPTH:
        if core.get("properties"):
            children = _object_fields(core, name, defs, secret, depth + 1)
            return FormField(kind="group", children=children, **common)
        extra = core.get("additionalProperties")
        item = _scalar_kind(_deref(extra, defs)) if isinstance(extra, dict) else None
        if item is not None:
            return FormField(kind="pairs", item_kind=item, **common)
    return FormField(kind="json", **common)


def _bound(schema: Mapping[str, Any], inclusive: str, exclusive: str) -> float | None:
    value = schema.get(inclusive, schema.get(exclusive))
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _option(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _union(
    core: Mapping[str, Any], name: str, defs: Mapping[str, Any], secret: bool, depth: int
) -> tuple[str, tuple[Variant, ...]] | None:
    """Objects told apart by a `const` tag (pydantic's discriminated unions): one fieldset each."""
    options = core.get("oneOf") or core.get("anyOf")
    if not isinstance(options, list) or depth >= MAX_DEPTH:
        return None
    discriminator = core.get("discriminator")
    tag_key = discriminator.get("propertyName") if isinstance(discriminator, dict) else None
    shapes = [_deref(o, defs) for o in options]
    if not tag_key:
        return None
    variants = []
    for shape in shapes:
        tag = (shape.get("properties") or {}).get(tag_key, {})
        if shape.get("type") != "object" or not isinstance(tag.get("const"), str):
            return None
        value = tag["const"]
        fields = _object_fields(shape, f"{name}.{value}", defs, secret, depth + 1)
        label = shape.get("title") or value
        variants.append(Variant(value, str(label), tuple(f for f in fields if f.key != tag_key)))
    return tag_key, tuple(variants)


def walk(fields: list[FormField] | tuple[FormField, ...]) -> Iterator[FormField]:
    """Every field, a group's and a variant's included, parents first."""
    for f in fields:
        yield f
        yield from walk(f.children)
        for variant in f.variants:
            yield from walk(variant.fields)


# --- values to show ---------------------------------------------------------------------------


def _to_text(f: FormField, value: Any) -> str:
    if value is None:
        return ""
    if f.kind == "lines" and isinstance(value, list):
        return "\n".join(_option(v) for v in value)
    if f.kind == "pairs" and isinstance(value, dict):
        return "\n".join(f"{k}={_option(v)}" for k, v in value.items())
    if f.kind == "json":
        return json.dumps(value, indent=2, ensure_ascii=False)
    if f.kind == "checkbox":
        return "on" if value is True else ""
    if f.kind == "choice":
        return _option(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return value if isinstance(value, str) else _option(value)


def form_values(fields: list[FormField], data: Mapping[str, Any] | None) -> dict[str, str]:
    """What each field shows: the stored value (``data``), else the schema's default.

    Never a secret's value, stored or default: a password field is always empty.
    """
    shown: dict[str, str] = {}
    _fill(fields, data or {}, shown)
    return shown


def _fill(
    fields: tuple[FormField, ...] | list[FormField], data: Any, shown: dict[str, str]
) -> None:
    given = data if isinstance(data, Mapping) else {}
    for f in fields:
        value = given[f.key] if f.key in given else (f.default if f.has_default else None)
        if f.kind == "group":
            _fill(f.children, value, shown)
        elif f.kind == "union":
            tag = value.get(f.tag_key) if isinstance(value, Mapping) else None
            shown[f.name] = tag if isinstance(tag, str) else ""
            for variant in f.variants:
                _fill(variant.fields, value if variant.tag == tag else {}, shown)
        elif not f.secret and f.kind != "const":
            shown[f.name] = _to_text(f, value)


def secret_state(fields: list[FormField], stored: Mapping[str, Any] | None) -> dict[str, bool]:
    """Which secret fields hold a value: what the edit form says ("set" / "not set")."""
    state: dict[str, bool] = {}

    def visit(items: tuple[FormField, ...] | list[FormField], data: Any) -> None:
        given = data if isinstance(data, Mapping) else {}
        for f in items:
            if f.kind == "group":
                visit(f.children, given.get(f.key))
            elif f.kind == "union":
                inner = given.get(f.key)
                for variant in f.variants:
                    visit(variant.fields, inner if _tag_of(f, inner) == variant.tag else None)
            elif f.secret:
                state[f.name] = given.get(f.key) not in (None, "", [], {})

    visit(fields, stored)
    return state


def _tag_of(f: FormField, value: Any) -> Any:
    return value.get(f.tag_key) if isinstance(value, Mapping) else None


# --- the form back as JSON --------------------------------------------------------------------


def parse(
    fields: list[FormField],
    form: Mapping[str, str],
    stored: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The section's JSON body from the submitted form, and what could not be read as typed.

    A blank field is left out, so the schema's default applies (or "Field required" names it);
    a blank field that may be null while its default is not becomes null. A blank secret keeps
    its ``stored`` value. Text that is not the number it should be goes through as typed, so
    the schema refuses it in the API's words; only what has no API equivalent (JSON that does
    not parse, a line without ``=``) is refused here.
    """
    errors: dict[str, str] = {}
    body = _parse_object(fields, form, stored if isinstance(stored, Mapping) else {}, errors)
    return body, errors


def _parse_object(
    fields: tuple[FormField, ...] | list[FormField],
    form: Mapping[str, str],
    stored: Mapping[str, Any],
    errors: dict[str, str],
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for f in fields:
        found, value = _parse_field(f, form, stored, errors)
        if found:
            body[f.key] = value
    return body


def _parse_field(
    f: FormField, form: Mapping[str, str], stored: Mapping[str, Any], errors: dict[str, str]
) -> tuple[bool, Any]:
    kept = stored.get(f.key)
    if f.kind == "const":
        return True, f.const
    if f.kind == "group":
        inner = _parse_object(f.children, form, kept if isinstance(kept, Mapping) else {}, errors)
        return bool(inner) or f.required, inner
    if f.kind == "union":
        tag = form.get(f.name, "").strip()
        variant = next((v for v in f.variants if v.tag == tag), None)
        if variant is None:
            return _blank(f)
        old = kept if isinstance(kept, Mapping) and _tag_of(f, kept) == tag else {}
        inner = _parse_object(variant.fields, form, old, errors)
        return True, {f.tag_key: tag, **inner}
    if f.kind == "checkbox":
        return True, f.name in form and form[f.name] not in ("", "off", "false")
    raw = form.get(f.name, "")
    if f.secret and not raw.strip():
        return (True, kept) if kept not in (None, "") else (False, None)
    # An option may be whitespace (a tab as CSV delimiter): only the empty option is "not set".
    if (raw == "") if f.kind == "choice" else not raw.strip():
        if f.kind in ("lines", "pairs"):
            return True, (None if f.nullable else [] if f.kind == "lines" else {})
        return _blank(f)
    try:
        return True, _read(f, raw)
    except ValueError as exc:
        errors[f.name] = str(exc)
        return False, None


def _blank(f: FormField) -> tuple[bool, Any]:
    if f.nullable and f.has_default and f.default is not None:
        return True, None
    return False, None


def _number(kind: ItemKind, text: str) -> Any:
    """The number typed, or the text as typed when it is none (the schema then says why)."""
    text = text.strip()
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            if re.fullmatch(r"[+-]?\d+", text):
                return int(text)
            value = float(text)
            return value if math.isfinite(value) else text
    except ValueError:
        return text
    return text


def _read(f: FormField, raw: str) -> Any:
    if f.kind in ("integer", "number"):
        return _number(f.kind, raw)
    if f.kind == "choice":
        for option, value in zip((c[0] for c in f.choices), f.choice_values, strict=True):
            if raw == option:
                return value
        return raw  # not an option: the schema's enum refuses it, naming the options
    if f.kind == "lines":
        return [_number(f.item_kind, line) for line in _lines(raw)]
    if f.kind == "pairs":
        pairs: dict[str, Any] = {}
        for line in _lines(raw):
            name, sep, value = line.partition("=")
            if not sep or not name.strip():
                raise ValueError(f"each line is name=value; this one is not: {line[:60]!r}")
            pairs[name.strip()] = _number(f.item_kind, value.strip())
        return pairs
    if f.kind == "json":
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
            ) from None
    return raw.strip()


def _lines(raw: str) -> list[str]:
    return [line.strip() for line in raw.splitlines() if line.strip()]


# --- a refusal's location back to its field ---------------------------------------------------


def locate(fields: list[FormField], section: str, where: str) -> str:
    """The form field a refusal's location (``config.pagination.page.size``) names: the
    deepest field it is in, else the section itself."""
    best = section
    for f in walk(fields):
        if (where == f.name or where.startswith(f.name + ".")) and len(f.name) > len(best):
            best = f.name
    return best


def sections_of(fields: list[FormField], *extra: str) -> set[str]:
    """Every name an error may be shown under: each field, and the ``extra`` sections."""
    return {f.name for f in walk(fields)} | set(extra)


__all__ = [
    "FormField",
    "Variant",
    "form_fields",
    "form_values",
    "locate",
    "parse",
    "secret_state",
    "sections_of",
    "walk",
]
