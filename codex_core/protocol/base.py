"""Base classes shared by every generated protocol model.

``WireModel`` is the base of all object models generated from the app-server JSON schema:
Python attributes are snake_case, the wire keys (usually camelCase, some snake_case) are the
aliases, and both are accepted on input. ``WireRootModel`` is the base of the model classes of
the definitions that are not objects (tagged unions, string enums, aliases), so that every
definition has a class with ``model_validate`` / ``model_dump``.

Wire form of any model: ``model.model_dump(mode="json", by_alias=True)``. Optional fields whose
schema type admits ``null`` are kept as ``null`` when unset, as the official server does; the
optional fields whose type does not (``OmitNone`` / ``NotNull`` from ``codex_core.protocol.types``,
serde ``default`` fields) reject an explicit ``null`` and are omitted when unset.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Discriminator, RootModel

__all__ = ["RootT", "WireModel", "WireRootModel", "WireType", "tagged_union"]

RootT = TypeVar("RootT")


class WireModel(BaseModel):
    """Base of every generated object model of the protocol."""

    model_config = ConfigDict(
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        defer_build=True,
        extra="ignore",
    )


class WireRootModel(RootModel[RootT], Generic[RootT]):
    """Base of the model classes of non-object definitions (unions, enums, aliases)."""

    model_config = ConfigDict(defer_build=True)


WireType = type[WireModel] | type[WireRootModel[Any]]
"""What ``codex_core.protocol.models.load`` returns."""


class _TagOf:
    """Reads a union's tag from raw JSON data or from an already built model."""

    __slots__ = ("__name__", "prop")

    def __init__(self, prop: str) -> None:
        self.prop = prop
        # pydantic names the discriminator "<__name__>()" in its errors
        self.__name__ = prop

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):
            return value.get(self.prop)
        return getattr(value, self.prop, None)

    def __repr__(self) -> str:
        return f"tagged_union({self.prop!r})"


def tagged_union(prop: str) -> Discriminator:
    """Discriminator of a tagged union some of whose variants share a tag value.

    Used where a variant is itself an (untagged) union, which pydantic's plain
    ``Field(discriminator=...)`` rejects; the variants are annotated with ``Tag(value)``.
    """
    return Discriminator(_TagOf(prop))
