#!/usr/bin/env python3
"""Regenerate the protocol models and the method table from the vendored JSON schema.

Usage: ``python scripts/generate_protocol.py`` (from anywhere; paths are relative to the repo).

Inputs (read only):
  codex_core/protocol/schema/experimental/  full schema, experimental methods and fields included
  codex_core/protocol/schema/stable/        the stable subset (only used for the experimental flags)

Outputs (overwritten; deterministic):
  codex_core/protocol/models/_<name>.py     one module per group of mutually recursive
                                            definitions (the schema has none: one per definition)
  codex_core/protocol/models/_index.py      public name -> module (data only)
  codex_core/protocol/models/_exports.py    every public name, imported by type checkers only
  codex_core/protocol/models/__init__.py    lazy ``load()`` / PEP 562 ``__getattr__``
  codex_core/protocol/methods.py            ``MethodSpec`` tables for every JSON-RPC method

Pipeline:
  1. Pre-process the experimental bundle: flatten ``definitions`` + ``definitions.v2`` into one
     namespace, drop the four envelope unions, name every inline object deterministically, merge
     string-enum ``oneOf`` lists into one enum, add ``discriminator`` to tagged unions and turn
     integer formats into bounds.
  2. Run datamodel-code-generator once on that schema (single module, ``TypeAliasType`` for
     non-object definitions, ``WireModel`` base class).
  3. Post-process with ``ast``: swap in ``AbsolutePathBuf`` from ``codex_core.protocol.types``,
     mark the optional properties whose type does not admit null (``OmitNone`` + ``NotNull``:
     an explicit null is rejected with serde's message, an unset value is omitted on output),
     add a ``WireRootModel`` class for every non-object definition, compute the dependency graph,
     group strongly connected components (plus the helper classes only they use) and write one
     module per group, each importing its dependencies from sibling modules.
  4. Derive the method tables from the union files of both schema directories.
  5. ``ruff check --select I --fix`` and ``ruff format`` the output, then add a per-file
     ``# ruff: noqa`` for the rules schema descriptions break (long lines, unicode dashes).
"""

from __future__ import annotations

import ast
import copy
import json
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL = ROOT / "codex_core" / "protocol"
SCHEMA = PROTOCOL / "schema"
MODELS = PROTOCOL / "models"
METHODS = PROTOCOL / "methods.py"
BUNDLE = "codex_app_server_protocol.schemas.json"

BASE_MODULE = "codex_core.protocol.base"
TYPES_MODULE = "codex_core.protocol.types"

# The JSON-RPC envelope unions: one variant per method, described by methods.py instead.
ENVELOPE_UNIONS = ("ClientRequest", "ClientNotification", "ServerRequest", "ServerNotification")
# Definitions replaced by hand-written types (name -> module).
HANDWRITTEN = {"AbsolutePathBuf": TYPES_MODULE}
# Suffix of the RootModel class generated for each non-object definition.
ROOT_MODEL_SUFFIX = "RootModel"

# Result types the "<Params minus Params>Response" rule cannot find (from the reference server's
# client_request_definitions! macro in codex-rs/app-server-protocol/src/protocol/common.rs).
RESPONSE_OVERRIDES = {
    "account/gatewayOAuth/cancel": "GatewayOAuthCancelResponse",
    "account/gatewayOAuth/login": "GatewayOAuthLoginResponse",
    "account/gatewayOAuth/read": "GatewayOAuthReadResponse",
    "account/logout": "LogoutAccountResponse",
    "account/rateLimits/read": "GetAccountRateLimitsResponse",
    "account/securitySetup/read": "GetAccountSecuritySetupResponse",
    "account/usage/read": "GetAccountTokenUsageResponse",
    "account/workspaceMessages/read": "GetWorkspaceMessagesResponse",
    "accountSession/list": "AccountSessionsResponse",
    "config/batchWrite": "ConfigWriteResponse",
    "config/mcpServer/reload": "McpServerRefreshResponse",
    "config/value/write": "ConfigWriteResponse",
    "configRequirements/read": "ConfigRequirementsReadResponse",
    "externalAgentConfig/import/readHistories": "ExternalAgentConfigImportHistoriesReadResponse",
    "memory/reset": "MemoryResetResponse",
    "remoteControl/status/read": "RemoteControlStatusReadResponse",
    "rollout/compress": "RolloutCompressResponse",
    "windowsSandbox/readiness": "WindowsSandboxReadinessResponse",
}

INT_BOUNDS = {
    "uint8": (0, 2**8 - 1),
    "uint16": (0, 2**16 - 1),
    "uint32": (0, 2**32 - 1),
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1),
}
# 64-bit formats only get their lower bound (0 for unsigned): the upper bounds are noise.
UNSIGNED_64 = {"uint64", "uint", "usize"}
# serde's "expected ..." for an integer format (what its primitive visitors say).
SERDE_INTEGERS = {
    "uint8": "u8", "uint16": "u16", "uint32": "u32", "uint64": "u64", "uint": "u64",
    "usize": "usize", "int8": "i8", "int16": "i16", "int32": "i32", "int64": "i64",
}  # fmt: skip

CODEGEN_ARGS = [
    "--input-file-type", "jsonschema",
    "--output-model-type", "pydantic_v2.BaseModel",
    "--target-python-version", "3.11",
    "--base-class", f"{BASE_MODULE}.WireModel",
    "--use-title-as-name",
    "--use-type-alias-type",
    "--use-one-literal-as-default",
    "--enum-field-as-literal", "all",
    "--use-annotated",
    "--field-constraints",
    "--snake-case-field",
    "--capitalise-enum-members",
    "--use-union-operator",
    "--use-schema-description",
    "--use-double-quotes",
    "--disable-timestamp",
    "--formatters", "builtin",
]  # fmt: skip


# --------------------------------------------------------------------------- schema helpers


def load_definitions(kind: str) -> dict[str, Any]:
    """All definitions of one schema dir, top-level and v2 in one namespace."""
    bundle = json.loads((SCHEMA / kind / BUNDLE).read_text())
    definitions = dict(bundle["definitions"])
    nested = definitions.pop("v2")
    for name, schema in nested.items():
        if name in definitions and _strip(definitions[name]) != _strip(schema):
            raise SystemExit(f"definition {name} differs between top level and v2")
        definitions.setdefault(name, schema)
    return definitions


def _strip(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k not in ("$schema", "title")}


def subschemas(schema: Any) -> Iterator[tuple[Any, Any]]:
    """(container, key) of every direct subschema of ``schema``."""
    if not isinstance(schema, dict):
        return
    if isinstance(schema.get("properties"), dict):
        for name in schema["properties"]:
            yield schema["properties"], name
    for keyword in ("items", "additionalProperties"):
        if isinstance(schema.get(keyword), dict):
            yield schema, keyword
    for keyword in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(keyword), list):
            for index in range(len(schema[keyword])):
                yield schema[keyword], index


def walk(schema: Any, visit: Callable[[dict[str, Any]], None]) -> None:
    if not isinstance(schema, dict):
        return
    visit(schema)
    for container, key in list(subschemas(schema)):
        walk(container[key], visit)


def ref_name(schema: Any) -> str | None:
    if isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    return None


def is_object(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "object" and "properties" in schema


def union_of(schema: Any) -> list[Any] | None:
    if not isinstance(schema, dict):
        return None
    for keyword in ("oneOf", "anyOf"):
        if isinstance(schema.get(keyword), list):
            return list(schema[keyword])
    return None


def pascal(text: str) -> str:
    parts = re.split(r"[^0-9A-Za-z]+", text)
    return "".join(part[:1].upper() + part[1:] for part in parts if part)


def snake(name: str) -> str:
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return name.lower()


def single_value(schema: Any) -> str | None:
    """The value of a one-value string enum (a tag), else None."""
    if isinstance(schema, dict):
        enum = schema.get("enum")
        if isinstance(enum, list) and len(enum) == 1 and isinstance(enum[0], str):
            return enum[0]
        if isinstance(schema.get("const"), str):
            return str(schema["const"])
    return None


# --------------------------------------------------------------------------- 1. pre-process


class Preprocessor:
    def __init__(self, definitions: dict[str, Any]) -> None:
        self.defs = copy.deepcopy(definitions)
        for name in ENVELOPE_UNIONS:
            self.defs.pop(name, None)
        self.taken: set[str] = set(self.defs)
        self.definition = ""
        self.title_counts: dict[str, int] = {}
        # alias name -> (tag property, {member name: tag value}); see add_discriminators
        self.callable_unions: dict[str, tuple[str, dict[str, str]]] = {}
        # id() of an integer schema -> its original format (normalise turns it into bounds)
        self.int_formats: dict[int, str] = {}

    def run(self) -> dict[str, Any]:
        for schema in self.defs.values():
            walk(schema, self.normalise)
            schema.pop("title", None)  # the class is named by the definition key
        self.title_counts = self.count_titles()
        for name in sorted(self.defs):
            self.definition = name
            self.name_inline(self.defs[name], name)
        for schema in self.defs.values():
            walk(schema, self.merge_string_enums)
        for name, schema in self.defs.items():
            self.add_discriminators(name, schema)
        return {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "title": "CodexAppServerProtocol",
            "type": "object",
            "definitions": self.defs,
        }

    # ---- keyword-level clean-ups
    def normalise(self, schema: dict[str, Any]) -> None:
        name = ref_name(schema)
        if name is not None:
            schema["$ref"] = f"#/definitions/{name}"
        schema.pop("$schema", None)
        types = schema.get("type")
        fmt = schema.get("format")
        if isinstance(fmt, str) and (types == "integer" or types == ["integer", "null"]):
            self.int_formats[id(schema)] = fmt
            if fmt in INT_BOUNDS:
                low, high = INT_BOUNDS[fmt]
                schema["minimum"] = max(low, schema.get("minimum", low))
                schema["maximum"] = min(high, schema.get("maximum", high))
                del schema["format"]
            elif fmt in UNSIGNED_64:
                schema["minimum"] = max(0, schema.get("minimum", 0))
                del schema["format"]
        for key in ("minimum", "maximum"):
            if isinstance(schema.get(key), float) and schema[key].is_integer():
                schema[key] = int(schema[key])
        # Titles only name classes; on anything else they make datamodel-codegen emit noise.
        if "title" in schema:
            if is_object(schema):
                schema["title"] = pascal(schema["title"])
            else:
                del schema["title"]

    # ---- class names for inline objects
    def claim(self, wanted: str) -> str:
        name, counter = wanted, 2
        while name in self.taken:
            name = f"{wanted}{counter}"
            counter += 1
        self.taken.add(name)
        return name

    def count_titles(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)

        def visit(schema: dict[str, Any]) -> None:
            if is_object(schema) and "title" in schema:
                counts[schema["title"]] += 1

        for name, schema in self.defs.items():
            counts[name] += 1
            for container, key in subschemas(schema):
                walk(container[key], visit)
        return counts

    def name_inline(self, schema: Any, owner: str) -> None:
        """Give every inline object schema a unique title (= its class name)."""
        if not isinstance(schema, dict):
            return
        variants = union_of(schema)
        if variants is not None:
            self.name_variants(schema, variants, owner)
        for prop, sub in (schema.get("properties") or {}).items():
            if not isinstance(sub, dict):
                continue
            if is_object(sub) and "title" not in sub:
                single_key = len(schema["properties"]) == 1 and "title" in schema
                base = f"{owner}Payload" if single_key else f"{owner}{pascal(prop)}"
                sub["title"] = self.claim(base)
            self.name_inline(sub, sub.get("title", owner))
        for keyword, suffix in (("items", "Item"), ("additionalProperties", "Value")):
            sub = schema.get(keyword)
            if is_object(sub) and "title" not in sub:
                sub["title"] = self.claim(f"{owner}{suffix}")
            if isinstance(sub, dict):
                self.name_inline(sub, sub.get("title", owner))
        for keyword in ("allOf",):
            for sub in schema.get(keyword) or []:
                self.name_inline(sub, owner)

    def name_variants(self, parent: dict[str, Any], variants: list[Any], owner: str) -> None:
        tag = self.tag_of(variants)
        # Branches of an object that also has properties (serde flatten + untagged enum) get
        # the parent's prefix when their own titles are not unique (e.g. two `FileId...`).
        if is_object(parent) and "title" in parent:
            titles = [v.get("title") for v in variants if is_object(v)]
            if any(self.title_counts.get(t, 0) > 1 for t in titles if t):
                prefix = parent["title"].removesuffix(self.definition)
                for variant in variants:
                    if is_object(variant) and "title" in variant:
                        variant["title"] = self.claim(prefix + variant["title"])
        stems = [self.variant_stem(v, variants, tag, slash="") for v in variants]
        for index, variant in enumerate(variants):
            if not is_object(variant):
                self.name_inline(variant, owner)
                continue
            if "title" not in variant:
                stem = stems[index]
                if stem and stems.count(stem) > 1:
                    # e.g. tags "openai/form" and "openaiForm": spell the separator out.
                    stem = self.variant_stem(variant, variants, tag, slash="Slash")
                wanted = f"{stem}{owner}" if stem else f"{owner}Variant{index}"
                variant["title"] = self.claim(wanted)
            else:
                self.taken.add(variant["title"])
            self.name_inline(variant, variant["title"])

    def variant_stem(self, variant: Any, variants: list[Any], tag: str | None, slash: str) -> str:
        """Class-name prefix of an untitled union variant: its tag value, else its own key."""
        if not is_object(variant):
            return ""
        if tag is not None:
            value = single_value(variant["properties"][tag]) or ""
            return pascal(value.replace("/", f" {slash} ")) if slash else pascal(value)
        return self.distinguishing_property(variant, variants)

    @staticmethod
    def distinguishing_property(variant: dict[str, Any], variants: list[Any]) -> str:
        others = [v for v in variants if v is not variant and is_object(v)]
        for prop in variant.get("required", []):
            if all(prop not in v.get("properties", {}) for v in others):
                return pascal(prop)
        return ""

    def resolve(self, schema: Any) -> Any:
        name = ref_name(schema)
        return self.defs.get(name) if name is not None else schema

    def tag_of(self, variants: list[Any]) -> str | None:
        """The property every variant requires with a distinct one-value enum, if any.

        A variant may itself be an object with branches (serde ``flatten`` of an untagged
        enum); its branches then share the variant's tag value.
        """
        resolved = [self.resolve(v) for v in variants]
        if not resolved or not all(is_object(v) for v in resolved):
            return None
        candidates = set(resolved[0]["properties"])
        for variant in resolved:
            candidates &= {
                prop
                for prop, sub in variant["properties"].items()
                if prop in variant.get("required", []) and single_value(sub) is not None
            }
        for tag in sorted(candidates, key=lambda p: (p != "type", p)):
            values = [single_value(v["properties"][tag]) for v in resolved]
            if len(set(values)) == len(values):
                return tag
        return None

    def member_name(self, variant: Any) -> str:
        name = ref_name(variant)
        return name if name is not None else str(variant["title"])

    # ---- unions
    @staticmethod
    def merge_string_enums(schema: dict[str, Any]) -> None:
        """``oneOf: [{enum:[a]}, {enum:[b]}, obj]`` -> ``oneOf: [{enum:[a, b]}, obj]``."""
        for keyword in ("oneOf", "anyOf"):
            variants = schema.get(keyword)
            if not isinstance(variants, list):
                continue
            strings = [
                v
                for v in variants
                if isinstance(v, dict)
                and v.get("type") == "string"
                and isinstance(v.get("enum"), list)
                and set(v) <= {"type", "enum", "description", "title"}
            ]
            if len(strings) < 2:
                continue
            values = [value for v in strings for value in v["enum"]]
            lines = [
                f"- `{value}`: {v['description']}"
                for v in strings
                if v.get("description")
                for value in v["enum"]
            ]
            merged: dict[str, Any] = {"type": "string", "enum": values}
            if lines:
                merged["description"] = "\n".join(lines)
            rest = [v for v in variants if v not in strings]
            if not rest:
                original = schema.get("description")
                del schema[keyword]
                schema.update(merged)
                if original:
                    schema["description"] = "\n\n".join(filter(None, [original, "\n".join(lines)]))
            else:
                schema[keyword] = [merged, *rest]

    # ---- optional properties that do not admit null
    def omit_none_fields(self) -> dict[str, dict[str, str]]:
        """class name -> {wire name: serde expectation} of every optional property whose type
        does not admit null (serde ``default`` + ``skip_serializing_if``): the reference rejects
        an explicit null there and omits the key when unset. Call after ``run``."""
        found: dict[str, dict[str, str]] = {}

        def visit(schema: dict[str, Any], owner: str) -> None:
            if not is_object(schema):
                return
            required = set(schema.get("required", []))
            fields = {
                prop: self.serde_expectation(sub)
                for prop, sub in sorted(schema["properties"].items())
                if prop not in required and not self.admits_null(sub)
            }
            if not fields:
                return
            # An object with properties and variants (serde flatten of an untagged enum) is
            # generated as one class per variant, each with the object's properties.
            variants = [v for v in union_of(schema) or [] if is_object(v)]
            for variant_owner in [v.get("title", "") for v in variants] or [owner]:
                if not variant_owner:
                    raise SystemExit(f"untitled object with optional non-null fields: {fields}")
                found.setdefault(variant_owner, {}).update(fields)

        for name, definition in self.defs.items():
            visit(definition, name)
            for container, key in subschemas(definition):
                walk(container[key], lambda sub: visit(sub, sub.get("title", "")))
        return {owner: dict(sorted(found[owner].items())) for owner in sorted(found)}

    def admits_null(self, schema: Any, seen: frozenset[str] = frozenset()) -> bool:
        if not isinstance(schema, dict):
            return True  # `true`: any value
        types = schema.get("type")
        if types == "null" or (isinstance(types, list) and "null" in types):
            return True
        if None in (schema.get("enum") or ()):
            return True
        name = ref_name(schema)
        if name is not None:
            return name not in seen and self.admits_null(self.defs[name], seen | {name})
        variants = union_of(schema)
        if variants is not None:
            return any(self.admits_null(v, seen) for v in variants)
        if isinstance(schema.get("allOf"), list):
            return all(self.admits_null(v, seen) for v in schema["allOf"])
        # no type constraint at all (serde_json::Value): null is a value like any other
        return types is None and "enum" not in schema and "const" not in schema

    def serde_expectation(self, schema: dict[str, Any]) -> str:
        """What serde says it expected when it meets null instead of this (non-null) schema."""
        target, name = schema, None
        while True:
            ref = ref_name(target)
            all_of = target.get("allOf")
            if ref is None and isinstance(all_of, list) and len(all_of) == 1:
                ref = ref_name(all_of[0])
            if ref is None:
                break
            target, name = self.defs[ref], ref
        types = target.get("type")
        variants = union_of(target)
        if variants is not None and self.tag_of(variants) is not None:
            return f"internally tagged enum {name}"
        if isinstance(target.get("enum"), list) or variants is not None:
            return "string or map"  # unit-variant (or externally tagged) enum
        if types == "boolean":
            return "a boolean"
        if types == "string":
            return "a string"
        if types == "integer":
            return SERDE_INTEGERS.get(self.int_formats.get(id(target), ""), "an integer")
        if types == "number":
            return "f64"
        if types == "array":
            return "a sequence"
        if is_object(target):
            return f"struct {name or target.get('title') or 'object'}"
        if types == "object":
            return "a map"
        raise SystemExit(f"no serde expectation for {schema}")

    def add_discriminators(self, name: str, schema: dict[str, Any]) -> None:
        """Mark tagged unions: a JSON-schema ``discriminator`` where pydantic can use the tag
        directly, else (a tag value shared by the branches of one variant) a callable
        discriminator, applied in post-processing to the union's type alias."""

        def visit(sub: dict[str, Any]) -> None:
            for keyword in ("oneOf", "anyOf"):
                variants = sub.get(keyword)
                if not isinstance(variants, list) or len(variants) < 2:
                    continue
                tag = self.tag_of(variants)
                if tag is None:
                    continue
                resolved = [self.resolve(v) for v in variants]
                if not any(union_of(v) is not None for v in resolved):
                    sub["discriminator"] = {"propertyName": tag}
                    continue
                alias = name if sub is schema else sub.get("title")
                if alias is None:
                    continue  # smart-mode union
                members = {
                    self.member_name(v): str(single_value(r["properties"][tag]))
                    for v, r in zip(variants, resolved, strict=True)
                }
                self.callable_unions[alias] = (tag, members)

        walk(schema, visit)


# --------------------------------------------------------------------------- 2. generate


def run_codegen(schema: dict[str, Any]) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "protocol.json"
        target = Path(tmp) / "protocol.py"
        source.write_text(json.dumps(schema, indent=1, sort_keys=True))
        command = [sys.executable, "-m", "datamodel_code_generator", "--input", str(source)]
        command += ["--output", str(target), *CODEGEN_ARGS]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SystemExit(f"datamodel-codegen failed:\n{result.stderr}")
        return target.read_text()


# --------------------------------------------------------------------------- 3. post-process

ROOT_TITLE = "CodexAppServerProtocol"
HEADER = (
    "# Generated by scripts/generate_protocol.py from codex_core/protocol/schema/experimental.\n"
    "# Do not edit: change the generator and run `python scripts/generate_protocol.py`.\n"
)
# Where the names the generated code uses come from.
IMPORTS = {
    "Annotated": "typing",
    "Any": "typing",
    "Literal": "typing",
    "ConfigDict": "pydantic",
    "Field": "pydantic",
    "Tag": "pydantic",
    "TypeAliasType": "typing_extensions",
    "WireModel": BASE_MODULE,
    "WireRootModel": BASE_MODULE,
    "tagged_union": BASE_MODULE,
    "NotNull": TYPES_MODULE,
    "OmitNone": TYPES_MODULE,
}


class Item:
    """One top-level statement of the generated code: a class or a type alias."""

    def __init__(self, name: str, node: ast.stmt, kind: str) -> None:
        self.name = name
        self.node = node
        self.kind = kind  # "class", "alias", "root" (RootModel of an alias) or "import"
        self.deps: set[str] = set()


class TitleRemover(ast.NodeTransformer):
    """Drop ``Field(title=...)`` (titles are class names, not field metadata)."""

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "Field":
            node.keywords = [k for k in node.keywords if k.arg != "title"]
        return node

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        self.generic_visit(node)
        if (
            isinstance(node.value, ast.Name)
            and node.value.id == "Annotated"
            and isinstance(node.slice, ast.Tuple)
        ):
            inner, *extras = node.slice.elts
            extras = [e for e in extras if not _empty_field(e)]
            if not extras:
                return inner
            node.slice.elts = [inner, *extras]
        return node


def _empty_field(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "Field"
        and not node.args
        and not node.keywords
    )


def _union_members(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _union_members(node.left) + _union_members(node.right)
    return [node]


def _union(members: list[ast.expr]) -> ast.expr:
    result = members[0]
    for member in members[1:]:
        result = ast.BinOp(left=result, op=ast.BitOr(), right=member)
    return result


def mark_omit_none(item: Item, fields: dict[str, str]) -> None:
    """Rewrite the class's fields named (on the wire) in ``fields``:
    ``x: Annotated[T | None, Field(...)] = d`` -> ``x: Annotated[OmitNone[T], NotNull(e),
    Field(...)] = d``, where ``e`` is serde's expectation for the field."""
    todo = dict(fields)
    for statement in item.node.body:  # type: ignore[attr-defined]
        if not isinstance(statement, ast.AnnAssign) or not isinstance(statement.target, ast.Name):
            continue
        annotation = statement.annotation
        inner, extras = annotation, []
        if isinstance(annotation, ast.Subscript) and getattr(annotation.value, "id", None) == (
            "Annotated"
        ):
            inner, *extras = annotation.slice.elts  # type: ignore[attr-defined]
        wire = statement.target.id
        for extra in extras:
            if isinstance(extra, ast.Call) and getattr(extra.func, "id", None) == "Field":
                for keyword in extra.keywords:
                    if keyword.arg == "alias" and isinstance(keyword.value, ast.Constant):
                        wire = str(keyword.value.value)
        if wire not in todo:
            continue
        expected = todo.pop(wire)
        members = _union_members(inner)
        kept = [m for m in members if not (isinstance(m, ast.Constant) and m.value is None)]
        if len(kept) == len(members) or not kept:
            raise SystemExit(f"{item.name}.{wire}: expected `T | None`, got {ast.unparse(inner)}")
        omit = ast.Subscript(
            value=ast.Name(id="OmitNone", ctx=ast.Load()), slice=_union(kept), ctx=ast.Load()
        )
        not_null = ast.parse(f"NotNull({expected!r})", mode="eval").body
        statement.annotation = ast.Subscript(
            value=ast.Name(id="Annotated", ctx=ast.Load()),
            slice=ast.Tuple(elts=[omit, not_null, *extras], ctx=ast.Load()),
            ctx=ast.Load(),
        )
    if todo:
        raise SystemExit(f"{item.name}: fields not found: {sorted(todo)}")


def apply_callable_discriminator(item: Item, tag: str, members: dict[str, str]) -> None:
    """Rewrite ``X = TypeAliasType("X", A | B)`` with a callable discriminator:
    ``Annotated[Annotated[A, Tag("a")] | Annotated[B, Tag("b")], tagged_union("type")]``."""
    call = item.node.value  # type: ignore[attr-defined]
    value = call.args[1]
    metadata: list[ast.expr] = []
    if isinstance(value, ast.Subscript) and getattr(value.value, "id", None) == "Annotated":
        value, *metadata = value.slice.elts  # type: ignore[attr-defined]
    wrapped = []
    for member in _union_members(value):
        name = getattr(member, "id", None)
        if name not in members:
            raise SystemExit(f"{item.name}: union member {ast.unparse(member)} has no tag")
        wrapped.append(ast.parse(f"Annotated[{name}, Tag({members[name]!r})]", mode="eval").body)
    discriminator = ast.parse(f"tagged_union({tag!r})", mode="eval").body
    elts = [_union(wrapped), *metadata, discriminator]
    call.args[1] = ast.Subscript(
        value=ast.Name(id="Annotated", ctx=ast.Load()),
        slice=ast.Tuple(elts=elts, ctx=ast.Load()),
        ctx=ast.Load(),
    )


def parse_items(
    code: str,
    callable_unions: dict[str, tuple[str, dict[str, str]]],
    omit_none: dict[str, dict[str, str]],
) -> list[Item]:
    items: list[Item] = []
    for node in ast.parse(code).body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            continue
        if isinstance(node, ast.Expr) and "model_rebuild" in ast.unparse(node):
            continue
        if isinstance(node, ast.ClassDef):
            if node.name != ROOT_TITLE:
                items.append(Item(node.name, TitleRemover().visit(node), "class"))
            continue
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Call)
            and getattr(node.value.func, "id", None) == "TypeAliasType"
        ):
            name = node.targets[0].id
            if name in HANDWRITTEN:
                source = f"from {HANDWRITTEN[name]} import {name}"
                items.append(Item(name, ast.parse(source).body[0], "import"))
            else:
                items.append(Item(name, TitleRemover().visit(node), "alias"))
            continue
        raise SystemExit(f"unexpected generated statement: {ast.unparse(node)[:120]}")
    by_name = {item.name: item for item in items}
    if len(by_name) != len(items):
        raise SystemExit("duplicate generated names")
    for alias, (tag, members) in callable_unions.items():
        apply_callable_discriminator(by_name[alias], tag, members)
    for name, fields in omit_none.items():
        if name not in by_name or by_name[name].kind != "class":
            raise SystemExit(f"{name}: no generated class for its optional non-null fields")
        mark_omit_none(by_name[name], fields)
    # A RootModel class for every non-object definition (and helper union), right after it.
    result: list[Item] = []
    for item in items:
        result.append(item)
        if item.kind in ("alias", "import"):
            root_name = item.name + ROOT_MODEL_SUFFIX
            if root_name in by_name:
                raise SystemExit(f"{root_name} clashes with a generated name")
            source = (
                f"class {root_name}(WireRootModel[Any]):\n"
                f'    """Model of `{item.name}`, which is not an object: validates and dumps the'
                f' bare value."""\n\n'
                f"    root: {item.name}\n"
            )
            result.append(Item(root_name, ast.parse(source).body[0], "root"))
    names = {item.name for item in result}
    for item in result:
        item.deps = {
            node.id
            for node in ast.walk(item.node)
            if isinstance(node, ast.Name) and node.id in names and node.id != item.name
        }
        if item.kind == "import":
            item.deps = set()
    return result


def strongly_connected(nodes: list[str], edges: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative); components in reverse topological order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    return components


class Module:
    def __init__(self, name: str, items: list[Item]) -> None:
        self.name = name
        self.items = items


def group_modules(items: list[Item], definitions: set[str]) -> list[Module]:
    """One module per strongly connected group of definitions, with the helper classes only
    they use (variants, inline objects, RootModels)."""
    order = {item.name: i for i, item in enumerate(items)}
    by_name = {item.name: item for item in items}
    # 1. units: a definition plus the helpers reachable from it alone.
    owners: dict[str, set[str]] = defaultdict(set)
    for item in items:
        if item.name not in definitions:
            continue
        seen: set[str] = set()
        todo = [d for d in item.deps if d not in definitions]
        while todo:
            helper = todo.pop()
            if helper in seen:
                continue
            seen.add(helper)
            owners[helper].add(item.name)
            todo.extend(d for d in by_name[helper].deps if d not in definitions)
    unit: dict[str, str] = {}
    for item in items:
        if item.kind == "root":
            unit[item.name] = unit[item.name.removesuffix(ROOT_MODEL_SUFFIX)]
        elif item.name in definitions or len(owners[item.name]) != 1:
            unit[item.name] = item.name
        else:
            unit[item.name] = next(iter(owners[item.name]))
    # 2. strongly connected components of the unit graph.
    unit_names = sorted(set(unit.values()), key=order.__getitem__)
    unit_edges: dict[str, set[str]] = {name: set() for name in unit_names}
    for item in items:
        for dep in item.deps:
            if unit[dep] != unit[item.name]:
                unit_edges[unit[item.name]].add(unit[dep])
    edges = {name: sorted(unit_edges[name], key=order.__getitem__) for name in unit_names}
    incoming: dict[str, int] = defaultdict(int)
    for targets in edges.values():
        for target in targets:
            incoming[target] += 1
    modules: list[Module] = []
    used: set[str] = set()
    for component in strongly_connected(unit_names, edges):
        members = set(component)
        # Name the module after its most referenced definition.
        main = min(
            component,
            key=lambda u: (u not in definitions, -incoming[u], order[u]),
        )
        module_name = "_" + snake(main)
        if module_name in used:
            raise SystemExit(f"module name clash: {module_name}")
        used.add(module_name)
        module_items = [item for item in items if unit[item.name] in members]
        modules.append(Module(module_name, module_items))
    return modules


def render_module(module: Module, module_of: dict[str, str]) -> str:
    own = {item.name for item in module.items}
    used_names = {
        node.id
        for item in module.items
        for node in ast.walk(item.node)
        if isinstance(node, ast.Name)
    }
    by_source: dict[str, set[str]] = defaultdict(set)
    for name in sorted(used_names):
        if name in IMPORTS and name not in own:
            by_source[IMPORTS[name]].add(name)
    siblings: dict[str, set[str]] = defaultdict(set)
    for item in module.items:
        for dep in item.deps:
            if dep not in own:
                siblings[module_of[dep]].add(dep)
    lines = [HEADER, "from __future__ import annotations", ""]
    lines += [ast.unparse(item.node) for item in module.items if item.kind == "import"]
    for source in sorted(by_source):
        lines.append(f"from {source} import {', '.join(sorted(by_source[source]))}")
    for sibling in sorted(siblings):
        lines.append(f"from .{sibling} import {', '.join(sorted(siblings[sibling]))}")
    body = []
    for item in module.items:
        if item.kind != "import":
            body.append(ast.unparse(item.node))
    public = sorted(own)
    return (
        "\n".join(lines)
        + "\n\n__all__ = ["
        + ", ".join(repr(name) for name in public)
        + "]\n\n\n"
        + "\n\n\n".join(body)
        + "\n"
    )


INIT_TEMPLATE = '''\
{header}
"""Pydantic models of every definition of the Codex app-server protocol schema, loaded lazily.

Importing this package is cheap: nothing is imported until first use. A model's module (and the
modules it depends on) is imported on demand, through ``load(name)`` or attribute access::

    from codex_core.protocol.models import ThreadStartParams, load

    params = load("ThreadStartParams").model_validate(raw_params)
    wire = response.model_dump(mode="json", by_alias=True)

Object definitions are ``WireModel`` classes. Non-object definitions (tagged unions, string
enums, aliases) are ``TypeAliasType`` aliases usable in annotations; their model class, which
``load()`` returns, is ``<Name>{root_suffix}`` (a ``WireRootModel``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Every public class and alias, so type checkers see real types (never imported at
    # runtime: attribute access goes through ``__getattr__`` below).
    from codex_core.protocol.base import WireType

    from ._exports import *  # noqa: F403
    from ._index import DEFINITIONS as DEFINITIONS
    from ._index import MODULES as MODULES
    from ._index import ROOT_MODELS as ROOT_MODELS

__all__ = ["DEFINITIONS", "MODULES", "ROOT_MODELS", "load"]

# Not modelled: one variant per method, described by codex_core.protocol.methods instead.
_ENVELOPE_UNIONS = {envelope!r}


def load(name: str) -> WireType:
    """The model class of a schema definition (or of any generated class), imported on demand.

    For a non-object definition this is its ``WireRootModel``: ``load("ThreadItem")`` is
    ``ThreadItem{root_suffix}``. Raises ``KeyError`` for unknown names.
    """
    from ._index import MODULES, ROOT_MODELS

    module = MODULES.get(name)
    if module is None:
        raise KeyError(_unknown(name))
    attribute = ROOT_MODELS.get(name, name)
    value = getattr(importlib.import_module(f"{{__name__}}.{{module}}"), attribute)
    return value  # type: ignore[no-any-return]


def _unknown(name: str) -> str:
    if name in _ENVELOPE_UNIONS:
        return (
            f"{{name}} is a JSON-RPC envelope union, which is not modelled; "
            "see codex_core.protocol.methods for its methods"
        )
    import difflib

    from ._index import DEFINITIONS

    close = difflib.get_close_matches(name, DEFINITIONS, n=3)
    hint = f" (did you mean {{', '.join(close)}}?)" if close else ""
    return f"{{name!r}} is not a definition of the app-server protocol schema{{hint}}"


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(f"module {{__name__!r}} has no attribute {{name!r}}")
    _index = importlib.import_module(f"{{__name__}}._index")
    if name in _index.__all__:
        value = getattr(_index, name)
    else:
        module = _index.MODULES.get(name)
        if module is None:
            raise AttributeError(f"module {{__name__!r}} has no attribute {{name!r}}")
        value = getattr(importlib.import_module(f"{{__name__}}.{{module}}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    from ._index import MODULES

    return sorted({{*globals(), *MODULES, *__all__}})
'''


def render_index(modules: list[Module], definitions: set[str]) -> str:
    lines = []
    for module in sorted(modules, key=lambda m: m.name):
        names = sorted(item.name for item in module.items)
        words = [f"*{n}" if n in definitions else n for n in names]
        lines += textwrap.wrap(
            " ".join([module.name, *words]),
            width=99,
            subsequent_indent="    ",
            break_long_words=False,
        )
    data = "\n".join(lines)
    return INDEX_TEMPLATE.format(
        header=HEADER.rstrip("\n"), data=data, root_suffix=ROOT_MODEL_SUFFIX
    )


def render_exports(modules: list[Module]) -> str:
    lines = [
        HEADER,
        '"""Every public name of the package, for type checkers only (see ``__init__``)."""',
        "",
    ]
    for module in sorted(modules, key=lambda m: m.name):
        names = sorted(item.name for item in module.items)
        imported = ", ".join(f"{name} as {name}" for name in names)
        lines.append(f"from .{module.name} import {imported}")
    return "\n".join(lines) + "\n"


def render_init() -> str:
    return INIT_TEMPLATE.format(
        header=HEADER.rstrip("\n"),
        envelope=ENVELOPE_UNIONS,
        root_suffix=ROOT_MODEL_SUFFIX,
    )


INDEX_TEMPLATE = '''\
{header}
"""Which module of ``codex_core.protocol.models`` defines each public name (data only).

Kept as one string and split on import: that is several times cheaper to compile than a dict
literal, which matters when bytecode caching is off.
"""

__all__ = ["DEFINITIONS", "MODULES", "ROOT_MODELS"]

# Per module: the module, then the names it defines (indented lines continue the list);
# "*" marks the schema's definitions.
_DATA = """\\
{data}
"""

MODULES: dict[str, str] = {{}}
_module = ""
for _line in _DATA.replace("*", "").splitlines():
    _names = _line.split()
    if _line[0] != " ":
        _module = _names.pop(0)
    MODULES.update(dict.fromkeys(_names, _module))

# The schema's definitions (top level and v2), minus the four JSON-RPC envelope unions.
DEFINITIONS: frozenset[str] = frozenset(_w[1:] for _w in _DATA.split() if _w[0] == "*")
# Non-object name -> its RootModel class (what ``load()`` returns for it).
ROOT_MODELS: dict[str, str] = {{
    _name: _name + "{root_suffix}" for _name in MODULES if _name + "{root_suffix}" in MODULES
}}
del _line, _module, _names
'''


# --------------------------------------------------------------------------- 4. method table


METHODS_TEMPLATE = '''\
{header}
"""Every JSON-RPC method of the app-server protocol, with its params and result definitions.

Derived from the schema's union files (``ClientRequest.json``, ``ServerRequest.json``,
``ServerNotification.json``, ``ClientNotification.json``); ``experimental`` compares the
experimental schema with the stable one. ``params`` / ``result`` are definition names for
``codex_core.protocol.models.load``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CLIENT_NOTIFICATIONS",
    "CLIENT_REQUESTS",
    "SERVER_NOTIFICATIONS",
    "SERVER_REQUESTS",
    "MethodSpec",
]


@dataclass(frozen=True, slots=True)
class MethodSpec:
    method: str
    # definition name of the params model; None if the method takes no params
    params: str | None
    # definition name of the result model; None for notifications
    result: str | None
    # True if the method is only in the experimental schema
    experimental: bool
    # wire names of params fields only in the experimental schema; nested fields as dotted
    # paths ("sandboxPolicy.foo"), through object fields only (not through arrays or maps)
    experimental_fields: tuple[str, ...] = ()
    # True if ``params`` may be absent or null (the schema's params is nullable)
    params_optional: bool = False


{tables}
'''


class MethodTable:
    def __init__(self, experimental: dict[str, Any], stable: dict[str, Any]) -> None:
        self.exp = experimental
        self.stable = stable

    @staticmethod
    def variants(kind: str, union: str) -> list[dict[str, Any]]:
        schema = json.loads((SCHEMA / kind / f"{union}.json").read_text())
        return list(schema["oneOf"])

    def params_of(self, variant: dict[str, Any]) -> tuple[str | None, bool]:
        """(params definition, optional) of a union variant."""
        params = variant["properties"].get("params")
        if params is None or params.get("type") == "null":
            return None, False
        optional = "params" not in variant.get("required", [])
        name = ref_name(params)
        if name is None:
            refs = [ref_name(v) for v in params.get("anyOf", []) if ref_name(v)]
            if len(refs) != 1:
                raise SystemExit(f"cannot resolve params {params}")
            name, optional = refs[0], True
        # Unwrap aliases such as NullableX = anyOf[X, null].
        while True:
            schema = self.exp[name]
            inner = [ref_name(v) for v in schema.get("anyOf", []) if ref_name(v)]
            nulls = [v for v in schema.get("anyOf", []) if v.get("type") == "null"]
            if len(inner) == 1 and nulls and len(schema["anyOf"]) == 2:
                name, optional = str(inner[0]), True
                continue
            return name, optional

    def experimental_fields(
        self, name: str | None, prefix: str = "", seen: frozenset[str] = frozenset()
    ) -> list[str]:
        if name is None or name not in self.stable or name in seen:
            return []
        found: list[str] = []
        for exp_variant, stable_variant in self.paired_variants(self.exp[name], self.stable[name]):
            stable_props = stable_variant.get("properties", {})
            for prop, sub in sorted(exp_variant.get("properties", {}).items()):
                path = f"{prefix}{prop}"
                if prop not in stable_props:
                    if path not in found:
                        found.append(path)
                    continue
                for ref in self.object_refs(sub):
                    for nested in self.experimental_fields(ref, f"{path}.", seen | {name}):
                        if nested not in found:
                            found.append(nested)
        return found

    @staticmethod
    def paired_variants(
        exp: dict[str, Any], stable: dict[str, Any]
    ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        pairs = [(exp, stable)]
        exp_variants = union_of(exp) or []
        stable_variants = {v.get("title"): v for v in union_of(stable) or [] if isinstance(v, dict)}
        for variant in exp_variants:
            title = variant.get("title") if isinstance(variant, dict) else None
            if title is not None and title in stable_variants:
                pairs.append((variant, stable_variants[title]))
        return pairs

    @staticmethod
    def object_refs(schema: Any) -> list[str]:
        """Definitions a property holds directly (itself, nullable or via allOf), not in arrays."""
        if not isinstance(schema, dict):
            return []
        name = ref_name(schema)
        if name is not None:
            return [name]
        refs: list[str] = []
        for keyword in ("allOf", "anyOf", "oneOf"):
            for sub in schema.get(keyword) or []:
                ref = ref_name(sub)
                if ref is not None:
                    refs.append(ref)
        return refs

    def table(
        self, union: str, requests: bool
    ) -> list[tuple[str, str | None, str | None, bool, list[str], bool]]:
        stable_methods = {
            v["properties"]["method"]["enum"][0] for v in self.variants("stable", union)
        }
        rows = []
        for variant in self.variants("experimental", union):
            method = variant["properties"]["method"]["enum"][0]
            params, optional = self.params_of(variant)
            result: str | None = None
            if requests:
                result = RESPONSE_OVERRIDES.get(method)
                if result is None and params is not None and params.endswith("Params"):
                    candidate = params.removesuffix("Params") + "Response"
                    result = candidate if candidate in self.exp else None
                if result is None:
                    raise SystemExit(f"no result type for {union} {method}")
            for name in (params, result):
                if name is not None and name not in self.exp:
                    raise SystemExit(f"{method}: unknown definition {name}")
            experimental = method not in stable_methods
            fields = [] if experimental else self.experimental_fields(params)
            rows.append((method, params, result, experimental, fields, optional))
        return rows


def render_methods(table: MethodTable) -> str:
    blocks = []
    for constant, union, requests, comment in (
        ("CLIENT_REQUESTS", "ClientRequest", True, "client -> server requests"),
        ("SERVER_REQUESTS", "ServerRequest", True, "server -> client requests"),
        ("SERVER_NOTIFICATIONS", "ServerNotification", False, "server -> client notifications"),
        ("CLIENT_NOTIFICATIONS", "ClientNotification", False, "client -> server notifications"),
    ):
        rows = table.table(union, requests)
        lines = [f"# {comment} ({len(rows)})", f"{constant}: dict[str, MethodSpec] = {{"]
        for method, params, result, experimental, fields, optional in rows:
            args = [repr(method), repr(params), repr(result), repr(experimental)]
            if fields:
                args.append(f"experimental_fields={tuple(fields)!r}")
            if optional:
                args.append("params_optional=True")
            lines.append(f"    {method!r}: MethodSpec({', '.join(args)}),")
        lines.append("}")
        blocks.append("\n".join(lines))
    return METHODS_TEMPLATE.format(header=HEADER.rstrip("\n"), tables="\n\n".join(blocks))


# --------------------------------------------------------------------------- 5. write


def ruff(*args: str, check: bool = True) -> str:
    command = [sys.executable, "-m", "ruff", *args]
    if shutil.which("ruff"):
        command = ["ruff", *args]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


# Rules generated text (schema descriptions) can break; silenced per file where they fire.
NOQA_RULES = ("E501", "RUF001", "RUF002", "RUF003")


def add_noqa_headers(targets: list[str]) -> None:
    """Add ``# ruff: noqa: <codes>`` to the generated files whose descriptions need it."""
    report = ruff(
        "check", "--select", ",".join(NOQA_RULES), "--output-format", "json", *targets, check=False
    )
    codes: dict[str, set[str]] = defaultdict(set)
    for problem in json.loads(report or "[]"):
        codes[problem["filename"]].add(problem["code"])
    for filename, found in sorted(codes.items()):
        path = Path(filename)
        text = path.read_text()
        marker = HEADER.splitlines()[-1] + "\n"
        line = f"# ruff: noqa: {', '.join(sorted(found))}\n"
        path.write_text(text.replace(marker, marker + line, 1))


def main() -> None:
    experimental = load_definitions("experimental")
    stable = load_definitions("stable")
    preprocessor = Preprocessor(experimental)
    schema = preprocessor.run()
    definitions = set(preprocessor.defs)
    code = run_codegen(schema)
    omit_none = preprocessor.omit_none_fields()
    items = parse_items(code, preprocessor.callable_unions, omit_none)
    generated = {item.name for item in items}
    missing = sorted(definitions - generated)
    if missing:
        raise SystemExit(f"definitions without a model: {missing}")
    # datamodel-codegen resolves name clashes with numeric suffixes (Foo2): there must be none.
    numbered = sorted(n for n in generated - definitions if re.search(r"\d$", n))
    if numbered:
        raise SystemExit(f"numbered class names: {numbered}")
    modules = group_modules(items, definitions)
    module_of = {item.name: m.name for m in modules for item in m.items}

    files: dict[Path, str] = {}
    for module in modules:
        files[MODELS / f"{module.name}.py"] = render_module(module, module_of)
    files[MODELS / "_index.py"] = render_index(modules, definitions)
    files[MODELS / "_exports.py"] = render_exports(modules)
    files[MODELS / "__init__.py"] = render_init()
    files[METHODS] = render_methods(MethodTable(experimental, stable))

    if MODELS.exists():
        for old in MODELS.glob("*.py"):
            old.unlink()
        shutil.rmtree(MODELS / "__pycache__", ignore_errors=True)
    MODELS.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text)
    targets = [str(MODELS.relative_to(ROOT)), str(METHODS.relative_to(ROOT))]
    ruff("check", "--fix", "--select", "I", "--quiet", *targets)
    ruff("format", "--quiet", *targets)
    add_noqa_headers(targets)
    classes = sum(1 for item in items if item.kind in ("class", "root"))
    aliases = sum(1 for item in items if item.kind in ("alias", "import"))
    omitted = sum(len(fields) for fields in omit_none.values())
    print(
        f"{len(definitions)} definitions -> {classes} classes + {aliases} type aliases "
        f"in {len(modules)} modules ({omitted} optional non-null fields); methods.py written"
    )


if __name__ == "__main__":
    main()
