"""``generate-json-schema`` / ``generate-ts`` exports against the official Codex 0.169.0 output.

The reference output is generated at test time by the pinned official server
(``codex_core.testing.reference``); the tests that need it skip where it is not installed.

The JSON Schema export must be byte-identical to the reference (and to the vendored schema in
``codex_core/protocol/schema/``). The TypeScript export is
generated from that JSON Schema, which does not carry everything the reference's generator
(ts-rs, working from the Rust types) knew. Every TypeScript file is therefore either

* byte-identical to the reference, or
* equivalent to it once the aspects the JSON Schema cannot express are normalised away
  (`LOSSY_ASPECTS`), or
* listed, with the reason, in an explicit allow-list (`STABLE_DIFFERENCES`,
  `EXPERIMENTAL_DIFFERENCES`); files the reference has and the schema cannot produce at all
  are listed in `NOT_DERIVABLE`.

The allow-lists are exact: a file that starts matching must be removed from them.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import codex_core.protocol
from codex_core.protocol.export import write_json_schema, write_typescript
from codex_core.testing.pytest_plugin import needs_reference
from codex_core.testing.reference import reference_binary

VENDORED_SCHEMA = Path(codex_core.protocol.__file__).with_name("schema")

#: ``export(command, experimental=...)``: the reference's ``generate-ts`` or
#: ``generate-json-schema`` output folder.
ReferenceExport = Callable[..., Path]

LOSSY_ASPECTS = (
    "struct field order: the JSON Schema lists properties sorted by name",
    "line breaks inside doc comments: schemars joins the lines of a paragraph",
    "bigint vs number for 64-bit integers: both are `integer` with an int64/uint64 format",
    "order of unit vs data variants: schemars gathers unit variants into one leading `enum`",
)

# Reference types with no JSON Schema definition: legacy v1 methods the reference strips
# from its JSON export (and their types), and named types schemars inlined into their users
# (`#[serde(flatten)]`-ed structs, aliases) or lost (a flattened map of `AppsConfig`).
NOT_DERIVABLE = frozenset(
    {
        "ConversationGitInfo.ts",
        "ConversationSummary.ts",
        "ExecPolicyAmendment.ts",
        "GetAuthStatusParams.ts",
        "GetAuthStatusResponse.ts",
        "GetConversationSummaryParams.ts",
        "GetConversationSummaryResponse.ts",
        "GitDiffToRemoteParams.ts",
        "GitDiffToRemoteResponse.ts",
        "GitSha.ts",
        "ImageGenerationItem.ts",
        "InternalSessionSource.ts",
        "LocalShellExecAction.ts",
        "ResponseItemId.ts",
        "SessionSource.ts",
        "SleepItem.ts",
        "ToolExposureSurface.ts",
        "WebSearchItem.ts",
        "v2/AppLinksConfig.ts",
        "v2/AppToolsConfig.ts",
        "v2/BedrockSettingsParams.ts",
        "v2/CustomGatewaySettingsParams.ts",
        "v2/DynamicToolFunctionSpec.ts",
        "v2/DynamicToolNamespaceSpec.ts",
        "v2/ExecPolicyAmendment.ts",
        "v2/GcpSettingsParams.ts",
    }
)

# Files that differ in substance (not only in `LOSSY_ASPECTS`), by reason.
_COMMON_DIFFERENCES: dict[str, frozenset[str]] = {
    # Whether an optional field was `f?: T`, `f?: T | null` or `f: T | null` depends on
    # `#[ts(optional)]` attributes the JSON Schema cannot show; the exporter follows the
    # reference's majority convention for each kind of type.
    "optional-field spelling": frozenset(
        {
            "ImageGenerationFailure.ts",
            "InitializeCapabilities.ts",
            "InternalChatMessageMetadataPassthrough.ts",
            "RealtimeVoicesList.ts",
            "Resource.ts",
            "ResourceContent.ts",
            "ResourceTemplate.ts",
            "Tool.ts",
            "v2/AdditionalContextEntry.ts",
            "v2/AdditionalFileSystemPermissions.ts",
            "v2/AdditionalPermissionProfile.ts",
            "v2/ChatgptAuthTokensRefreshResponse.ts",
            "v2/ConfigWarningNotification.ts",
            "v2/DynamicToolCallParams.ts",
            "v2/ExternalAgentConfigImportHistoryRecordSuccessParams.ts",
            "v2/GatewayOAuthReadResponse.ts",
            "v2/GetAccountTokenUsageResponse.ts",
            "v2/ItemCompletedNotification.ts",
            "v2/McpServerElicitationRequestParams.ts",
            "v2/McpServerOauthLoginCompletedNotification.ts",
            "v2/McpServerOauthLoginResponse.ts",
            "v2/McpServerToolCallResponse.ts",
            "v2/MisalignmentErrorDetails.ts",
            "v2/PermissionsRequestApprovalParams.ts",
            "v2/ProcessExitedNotification.ts",
            "v2/SkillInterface.ts",
            "v2/SkillMetadata.ts",
            "v2/SkillToolDependency.ts",
            "v2/ThreadNameUpdatedNotification.ts",
            "v2/ThreadUsage.ts",
            "v2/ToolRequestUserInputQuestion.ts",
            "v2/UserInput.ts",
        }
    ),
    # A named type the JSON Schema inlined (see `NOT_DERIVABLE`) is spelled out here.
    "inlined named type": frozenset(
        {
            "LocalShellAction.ts",
            "ReviewDecision.ts",
            "v2/CommandExecutionApprovalDecision.ts",
            "v2/CommandExecutionRequestApprovalParams.ts",
            "v2/ConfigRequirements.ts",
            "v2/DynamicToolNamespaceTool.ts",
            "v2/DynamicToolSpec.ts",
            "v2/ProviderSettingsPatch.ts",
            "v2/ThreadItem.ts",
        }
    ),
    # `#[ts(type = ...)]` overrides and flattened maps the JSON Schema does not show.
    "TypeScript-only type override": frozenset(
        {"ContentItem.ts", "ResponseItem.ts", "v2/AppsConfig.ts"}
    ),
    # `Option<Option<T>>` is `T | null | null` in the reference, plain nullable in JSON.
    "double option": frozenset(
        {
            "v2/ThreadForkParams.ts",
            "v2/ThreadResumeParams.ts",
            "v2/ThreadStartParams.ts",
            "v2/TurnStartParams.ts",
        }
    ),
    # The serde field names (JSON) and the ts-rs field names disagree in the reference.
    "wire names differ from TS names": frozenset(
        {"v2/ThreadRealtimeItem.ts", "v2/ThreadTimelineEntry.ts"}
    ),
    # Docs the JSON Schema lacks (custom `JsonSchema` impls) or words differently.
    "doc comment": frozenset(
        {
            "LegacyAppPathString.ts",
            "PathUri.ts",
            "ReasoningEffort.ts",
            "ServerNotificationEnvelope.ts",
            "ThreadId.ts",
            "v2/ApprovalsReviewer.ts",
        }
    ),
    # The legacy v1 methods (`NOT_DERIVABLE`) are missing from the request union.
    "legacy v1 methods": frozenset({"ClientRequest.ts"}),
}

STABLE_DIFFERENCES = _COMMON_DIFFERENCES

# The experimental API adds files of the same kinds.
EXPERIMENTAL_DIFFERENCES: dict[str, frozenset[str]] = {
    **_COMMON_DIFFERENCES,
    "optional-field spelling": _COMMON_DIFFERENCES["optional-field spelling"]
    | {"v2/EnvironmentStatusResponse.ts", "v2/McpServerEventStreamStartParams.ts"},
    "double option": _COMMON_DIFFERENCES["double option"]
    | {
        "v2/ThreadRealtimeStartParams.ts",
        "v2/ThreadSettingsUpdateParams.ts",
        "v2/TurnSettingsUpdateParams.ts",
    },
    "wire names differ from TS names": _COMMON_DIFFERENCES["wire names differ from TS names"]
    | {"v2/AccountSessionsSwitchResponse.ts"},
}


# --------------------------------------------------------------------------------------------
# JSON Schema
# --------------------------------------------------------------------------------------------


def _files(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def reference_export(tmp_path_factory: pytest.TempPathFactory) -> ReferenceExport:
    """The reference's exports, each generated once per module (in an empty CODEX_HOME)."""
    made: dict[tuple[str, bool], Path] = {}

    def export(command: str, *, experimental: bool) -> Path:
        if (command, experimental) not in made:
            binary = reference_binary()
            assert binary is not None, "mark the test with needs_reference"
            out = tmp_path_factory.mktemp(f"reference-{command}")
            argv = [binary, "app-server", command, "--out", str(out)]
            env = {**os.environ, "CODEX_HOME": str(tmp_path_factory.mktemp("codex-home"))}
            subprocess.run(
                [*argv, "--experimental"] if experimental else argv,
                check=True,
                timeout=120,
                env=env,
                capture_output=True,
            )
            made[command, experimental] = out
        return made[command, experimental]

    return export


@pytest.mark.parametrize(("experimental", "flavour"), [(False, "stable"), (True, "experimental")])
def test_json_schema_is_the_vendored_schema(
    tmp_path: Path, experimental: bool, flavour: str
) -> None:
    expected = _files(VENDORED_SCHEMA / flavour)
    out = tmp_path / "schema"
    written = write_json_schema(out, experimental=experimental)
    assert sorted(p.relative_to(out).as_posix() for p in written) == sorted(expected)
    actual = _files(out)
    assert actual.keys() == expected.keys()
    assert [name for name in expected if actual[name] != expected[name]] == []


@needs_reference
@pytest.mark.parametrize("experimental", [False, True])
def test_json_schema_matches_the_reference(
    tmp_path: Path, reference_export: ReferenceExport, experimental: bool
) -> None:
    expected = _files(reference_export("generate-json-schema", experimental=experimental))
    out = tmp_path / "schema"
    write_json_schema(out, experimental=experimental)
    actual = _files(out)
    assert actual.keys() == expected.keys()
    assert [name for name in expected if actual[name] != expected[name]] == []


# --------------------------------------------------------------------------------------------
# TypeScript
# --------------------------------------------------------------------------------------------


@needs_reference
def test_typescript_stable_matches_the_reference(
    tmp_path: Path, reference_export: ReferenceExport
) -> None:
    reference = reference_export("generate-ts", experimental=False)
    out = tmp_path / "ts"
    written = write_typescript(out)
    assert sorted(written) == sorted(p for p in out.rglob("*") if p.is_file())
    _assert_typescript_matches(out, reference, STABLE_DIFFERENCES)


@needs_reference
def test_typescript_experimental_matches_the_reference(
    tmp_path: Path, reference_export: ReferenceExport
) -> None:
    reference = reference_export("generate-ts", experimental=True)
    out = tmp_path / "ts"
    write_typescript(out, experimental=True)
    _assert_typescript_matches(out, reference, EXPERIMENTAL_DIFFERENCES)


def test_typescript_files_are_ts_rs_shaped(tmp_path: Path) -> None:
    write_typescript(tmp_path)
    for path in tmp_path.rglob("*.ts"):
        text = path.read_text(encoding="utf-8")
        assert text.startswith("// GENERATED CODE! DO NOT MODIFY BY HAND!\n\n"), path
        assert "\r" not in text and text.endswith(";\n"), path
    index = (tmp_path / "index.ts").read_text(encoding="utf-8")
    assert 'export type { ClientRequest } from "./ClientRequest";\n' in index
    assert index.endswith('export * as v2 from "./v2";\n')
    request = (tmp_path / "ClientRequest.ts").read_text(encoding="utf-8")
    assert '{ "method": "thread/start", id: RequestId, params: ThreadStartParams, }' in request
    assert '{ "method": "config/mcpServer/reload", id: RequestId, params: undefined, }' in request
    assert 'import type { ThreadStartParams } from "./v2/ThreadStartParams";' in request
    thread = (tmp_path / "v2" / "ThreadStartParams.ts").read_text(encoding="utf-8")
    assert "model?: string | null" in thread
    assert 'import type { Personality } from "../Personality";' in thread


def test_typescript_experimental_adds_experimental_api(tmp_path: Path) -> None:
    stable, experimental = tmp_path / "stable", tmp_path / "experimental"
    write_typescript(stable)
    write_typescript(experimental, experimental=True)
    assert not (stable / "v2" / "ThreadSearchParams.ts").exists()
    assert (experimental / "v2" / "ThreadSearchParams.ts").exists()
    stable_params = (stable / "v2" / "ThreadStartParams.ts").read_text(encoding="utf-8")
    experimental_params = (experimental / "v2" / "ThreadStartParams.ts").read_text("utf-8")
    assert "dynamicTools" not in stable_params
    assert "dynamicTools?: Array<DynamicToolSpec> | null" in experimental_params


def _assert_typescript_matches(
    out: Path, reference: Path, allowed: dict[str, frozenset[str]]
) -> None:
    actual, expected = _files(out), _files(reference)
    missing = expected.keys() - actual.keys()
    assert missing == NOT_DERIVABLE & expected.keys()
    assert actual.keys() - expected.keys() == set()

    identical, equivalent, different = [], [], []
    for name in sorted(actual):
        if actual[name] == expected[name]:
            identical.append(name)
        elif _equivalent(name, actual[name].decode(), expected[name].decode(), missing):
            equivalent.append(name)
        else:
            different.append(name)
    print(
        f"TypeScript: {len(identical)} identical, {len(equivalent)} equal up to the lossy "
        f"aspects, {len(different)} allow-listed differences, {len(missing)} not derivable"
    )
    allow_listed = frozenset().union(*allowed.values())
    assert sorted(set(different) - allow_listed) == [], "unexpected differences"
    assert sorted(allow_listed - set(different)) == [], "stale allow-list entries"


# --------------------------------------------------------------------------------------------
# Normalised comparison: a parser for the TypeScript subset ts-rs emits
# --------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<doc>/\*\*.*?\*/)
      | (?P<str>"(?:[^"\\]|\\.)*")
      | (?P<id>[A-Za-z_$][A-Za-z0-9_$]*)
      | (?P<num>-?\d+(?:\.\d+)?)
      | (?P<punct>\S)
    )""",
    re.S | re.X,
)

Node = tuple[Any, ...]


@dataclass(frozen=True)
class _Declaration:
    imports: frozenset[str]
    doc: str | None
    body: Node


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while (match := _TOKEN.match(text, position)) and match.end() > position:
        position = match.end()
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
    assert text[position:].strip() == "", text[position:]
    return tokens


class _Parser:
    """Recursive descent over ``union := inter ('|' inter)*``, ``inter := primary ('&' ...)``."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.index = 0

    def peek(self, offset: int = 0) -> tuple[str, str]:
        index = self.index + offset
        return self.tokens[index] if index < len(self.tokens) else ("eof", "")

    def take(self, expected: str | None = None) -> tuple[str, str]:
        token = self.peek()
        assert expected is None or token[1] == expected, (expected, token, self.index)
        self.index += 1
        return token

    def parse(self) -> Node:
        node = self.union()
        assert self.peek()[0] == "eof", self.tokens[self.index : self.index + 5]
        return node

    def union(self) -> Node:
        members = [self.intersection()]
        while self.peek()[1] == "|":
            self.take()
            members.append(self.intersection())
        return members[0] if len(members) == 1 else ("union", *members)

    def intersection(self) -> Node:
        members = [self.primary()]
        while self.peek()[1] == "&":
            self.take()
            members.append(self.primary())
        return members[0] if len(members) == 1 else ("inter", *members)

    def primary(self) -> Node:
        kind, value = self.peek()
        if value == "(":
            self.take()
            node = self.union()
            self.take(")")
            return node
        if value == "{":
            return self.object()
        if value == "[":
            self.take()
            items: list[Node] = []
            while self.peek()[1] != "]":
                items.append(self.union())
                if self.peek()[1] == ",":
                    self.take()
            self.take("]")
            return ("tuple", *items)
        self.take()
        if kind in ("str", "num"):
            return ("literal", value)
        assert kind == "id", (kind, value)
        if self.peek()[1] == "<":
            self.take()
            arguments = [self.union()]
            while self.peek()[1] == ",":
                self.take()
                arguments.append(self.union())
            self.take(">")
            return ("generic", value, *arguments)
        if self.peek()[1] == "[" and self.peek(1)[1] == "]":
            self.take()
            self.take()
            return ("generic", "Array", ("ref", value))
        return ("ref", value)

    def object(self) -> Node:
        self.take("{")
        fields: list[Node] = []
        while True:
            doc = self.take()[1] if self.peek()[0] == "doc" else None
            if self.peek()[1] == "}":
                self.take()
                return ("object", *fields)
            if self.peek()[1] == "[":  # [key in string]?: T  /  [key: string]: T
                self.take()
                self.take("key")
                separator = self.take()[1]
                key = self.union()
                self.take("]")
                name: Any = ("index", separator, key)
            else:
                name = self.take()[1].strip('"')
            optional = self.peek()[1] == "?"
            if optional:
                self.take()
            self.take(":")
            fields.append(("field", name, optional, self.union(), _paragraphs(doc)))
            if self.peek()[1] in (",", ";"):
                self.take()


def _paragraphs(doc: str | None) -> str | None:
    """A doc comment's text with each paragraph on one line (line breaks are lossy)."""
    if doc is None:
        return None
    text = re.sub(r"^/\*\*|\*/$", "", doc.strip())
    text = re.sub(r"\n[ \t]*\*[ \t]?", "\n", text)
    paragraphs = (" ".join(p.split()) for p in re.split(r"\n\s*\n", text))
    return "\n\n".join(p for p in paragraphs if p)


def _canonical(node: Node) -> Node:
    """Normalise the `LOSSY_ASPECTS`: field order, union order, bigint."""
    kind = node[0]
    if kind == "object":
        fields = [
            (tag, name, optional, _canonical(value), doc)
            for tag, name, optional, value, doc in node[1:]
        ]
        return ("object", *sorted(fields, key=repr))
    if kind == "union":
        return ("union", *sorted((_canonical(m) for m in node[1:]), key=repr))
    if kind in ("inter", "tuple"):
        return (kind, *(_canonical(m) for m in node[1:]))
    if kind == "generic":
        return (kind, node[1], *(_canonical(m) for m in node[2:]))
    if node == ("ref", "bigint"):
        return ("ref", "number")
    return node


_DECLARATION = re.compile(r"(/\*\*(?:(?!\*/).)*\*/\n)?export type (\w+) =(.*);\n\Z", re.S)
_IMPORT = re.compile(r'^import type \{ (\w+) \} from "([^"]+)";$', re.M)


def _declaration(text: str) -> _Declaration:
    match = _DECLARATION.search(text)
    assert match is not None
    imports = frozenset(f"{name} {path}" for name, path in _IMPORT.findall(text))
    body = _canonical(_Parser(match.group(3)).parse())
    return _Declaration(imports, _paragraphs(match.group(1)), body)


def _index_lines(text: str, missing: set[str], folder: str) -> Iterator[str]:
    for line in text.splitlines():
        match = re.fullmatch(r'export type \{ (\w+) \} from "\./\w+";', line)
        if match is None or f"{folder}{match.group(1)}.ts" not in missing:
            yield line


def _equivalent(name: str, actual: str, expected: str, missing: set[str]) -> bool:
    """Equal up to `LOSSY_ASPECTS` (and, for indexes, the `NOT_DERIVABLE` files)."""
    if name.endswith("index.ts"):
        folder = name.removesuffix("index.ts")
        return list(_index_lines(actual, set(), folder)) == list(
            _index_lines(expected, missing, folder)
        )
    return _declaration(actual) == _declaration(expected)
