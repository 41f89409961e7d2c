"""The method table: which methods exist, who answers them, and the checks before a handler runs.

Everything here is synchronous and runs in the connection's reader, in arrival order, so a
pipelined ``initialize`` is always seen before the requests behind it. The order of the checks
follows the official server: method name, then params, then the connection state, then
experimental gating. Only the handler itself runs concurrently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from codex_core.protocol.envelope import Request
from codex_core.protocol.methods import MethodSpec
from codex_core.rpc.errors import METHOD_NOT_FOUND, RpcError, invalid_request
from codex_core.rpc.handlers import Handler, RpcMethod
from codex_core.rpc.validation import describe, serde_message

if TYPE_CHECKING:
    from codex_core.rpc.connection import Connection


@dataclass(frozen=True, slots=True)
class Route:
    """A registered method and the plugin that registered it."""

    method: RpcMethod
    plugin: str


@dataclass(frozen=True, slots=True)
class Call:
    handler: Handler
    params: Any
    plugin: str


class Router:
    def __init__(self, specs: Mapping[str, MethodSpec], routes: Mapping[str, Route]) -> None:
        self._specs = specs
        self._routes = dict(routes)
        self._models: dict[str, type[BaseModel]] = {}
        names = list(specs) + [name for name in routes if name not in specs]
        self._unknown_suffix = "expected one of " + ", ".join(f"`{name}`" for name in names)

    @property
    def routes(self) -> Mapping[str, Route]:
        return self._routes

    def spec(self, method: str) -> MethodSpec | None:
        return self._specs.get(method)

    def params_model(self, method: str) -> type[BaseModel] | None:
        """The model a method's params validate against, imported on first use."""
        route = self._routes.get(method)
        if route is not None and route.method.params_model is not None:
            return route.method.params_model
        spec = self._specs.get(method)
        if spec is None or spec.params is None:
            return None
        model = self._models.get(spec.params)
        if model is None:
            from codex_core.protocol.models import load

            model = self._models[spec.params] = load(spec.params)
        return model

    def parse_params(self, request: Request) -> Any:
        """Validated params for ``request``, or the ``RpcError`` the official server sends."""
        method = request.method
        spec = self._specs.get(method)
        route = self._routes.get(method)
        if spec is None and route is None:
            raise invalid_request(
                f"Invalid request: unknown variant `{method}`, {self._unknown_suffix}"
            )
        model = self.params_model(method)
        if model is not None:
            if request.params is None:
                if spec is not None and spec.params_optional:
                    return None
                raise invalid_request("Invalid request: missing field `params`")
            if not isinstance(request.params, dict | list):
                # serde names the type it expected when the params are not an object (the
                # protocol's only params unions are internally tagged enums).
                kind = "internally tagged enum" if "root" in model.model_fields else "struct"
                name = spec.params if spec is not None and spec.params else model.__name__
                raise invalid_request(
                    f"Invalid request: invalid type: {describe(request.params)}, "
                    f"expected {kind} {name}"
                )
            try:
                # Strict, like serde: "yes" is not a boolean and 1.5 is not an integer.
                return model.model_validate(request.params, strict=True)
            except ValidationError as exc:
                message = serde_message(exc, request.params)
                raise invalid_request(f"Invalid request: {message}") from None
        if spec is not None and request.params not in (None, {}):
            # A params-less method of the protocol: serde deserializes its params as unit.
            raise invalid_request(
                f"Invalid request: invalid type: {describe(request.params)}, expected unit"
            )
        return request.params

    def gate(self, connection: Connection, request: Request) -> None:
        """Refuse experimental methods and fields unless the client opted in."""
        if connection.experimental_api:
            return
        method = request.method
        spec = self._specs.get(method)
        route = self._routes.get(method)
        if (spec is not None and spec.experimental) or (
            route is not None and route.method.experimental
        ):
            raise invalid_request(f"{method} requires experimentalApi capability")
        if spec is not None and spec.experimental_fields and isinstance(request.params, dict):
            for path in spec.experimental_fields:
                if _present(request.params, path):
                    raise invalid_request(f"{method}.{path} requires experimentalApi capability")

    def call(self, method: str, params: Any) -> Call:
        route = self._routes.get(method)
        if route is None:
            raise RpcError(
                METHOD_NOT_FOUND,
                f"`{method}` is part of the protocol but no installed plugin implements it "
                "(method not supported)",
            )
        return Call(route.method.handler, params, route.plugin)


def _present(params: dict[str, Any], path: str) -> bool:
    """Whether a (dotted) field is set to something other than null."""
    value: Any = params
    for part in path.split("."):
        if not isinstance(value, dict):
            return False
        value = value.get(part)
        if value is None:
            return False
    return True
