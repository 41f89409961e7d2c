"""ChatGPT tokens: reading the claims of an (unverified) JWT the way the official server does.

PyJWT decodes them; the format check before it keeps the official server's error text.

The server never verifies signatures: the tokens come from the OAuth issuer over TLS or from the
client itself, and are only read for display (email, plan) and routing (account id).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

AUTH_CLAIMS = "https://api.openai.com/auth"
PROFILE_CLAIMS = "https://api.openai.com/profile"

_PLAN_ALIASES = {"hc": "enterprise", "education": "edu"}


class InvalidToken(ValueError):
    """Not a JWT (three non-empty dot-separated parts with a JSON payload)."""


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of ``header.payload.signature``; raises ``InvalidToken``."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise InvalidToken("invalid ID token format")
    import jwt  # PyJWT; loaded by the first token read, not at startup

    try:
        # Read, not verified (see above): no signature or expiry check.
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.DecodeError as exc:
        raise InvalidToken(f"invalid ID token payload: {exc}") from None
    return claims


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What the server reads from a ChatGPT ID or access token."""

    email: str | None = None
    plan_type: str | None = None
    user_id: str | None = None
    account_id: str | None = None
    expires_at: int | None = None


def token_info(token: str) -> TokenInfo:
    claims = jwt_claims(token)
    auth = _table(claims.get(AUTH_CLAIMS))
    profile = _table(claims.get(PROFILE_CLAIMS))
    email = claims.get("email") or profile.get("email")
    exp = claims.get("exp")
    return TokenInfo(
        email=email if isinstance(email, str) else None,
        plan_type=_str(auth.get("chatgpt_plan_type")),
        user_id=_str(auth.get("chatgpt_user_id")) or _str(auth.get("user_id")),
        account_id=_str(auth.get("chatgpt_account_id")),
        expires_at=exp if isinstance(exp, int) else None,
    )


def _table(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def wire_plan_type(raw: str | None) -> str:
    """A plan as the protocol's ``PlanType`` enum spells it; anything else is ``unknown``."""
    if not raw:
        return "unknown"
    lowered = raw.lower()
    lowered = _PLAN_ALIASES.get(lowered, lowered)
    return lowered if lowered in _known_plans() else "unknown"


def _known_plans() -> tuple[str, ...]:
    from codex_core.protocol.models import PlanType

    alias = PlanType.__value__
    for arg in get_args(alias):
        found = get_args(arg)
        if found and all(isinstance(item, str) for item in found):
            return tuple(found)
    return tuple(item for item in get_args(alias) if isinstance(item, str))
