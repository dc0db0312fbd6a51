"""Bearer-token auth: a grpc.aio server interceptor and the rule about where the daemon may listen.

When tokens are configured, every call needs ``authorization: Bearer <token>``
in its metadata. A missing or unknown token is ``UNAUTHENTICATED``; a build
token calling ``Admin`` is ``PERMISSION_DENIED`` (an admin token may call
everything). Health and reflection stay open, so load balancers and
``grpcurl list`` work without a token. Tokens are compared in constant time
(over their SHA-256, so not even their length leaks).

A daemon that listens beyond loopback must have tokens: it refuses to start
otherwise.

Token file (``cached serve --token-file FILE``): one token a line, as
``build:TOKEN`` or ``admin:TOKEN``; blank lines and lines starting with ``#``
are ignored; several tokens of one role are allowed (rotation).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import grpc

log = logging.getLogger("cached.server.auth")

ROLES = ("build", "admin")
MIN_TOKEN_CHARS = 16
OPEN_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)
ADMIN_PREFIX = "/cached.v1.Admin/"


@dataclass(frozen=True)
class Tokens:
    build: tuple[str, ...] = ()
    admin: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.build or self.admin)


def check_token(role: str, token: str) -> str:
    if role not in ROLES:
        raise ValueError(f"token role {role!r}: use 'build' or 'admin'")
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token) or not token.isprintable():
        raise ValueError(f"a {role} token must be at least {MIN_TOKEN_CHARS} printable characters without spaces")
    return token


def load_token_file(path: Path) -> Tokens:
    """Reads ``build:TOKEN`` / ``admin:TOKEN`` lines; raises ValueError naming the line at fault."""
    try:
        text = path.read_text()
    except OSError as e:
        raise ValueError(f"cannot read the token file {path}: {e.strerror}") from None
    found: dict[str, list[str]] = {role: [] for role in ROLES}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        role, sep, token = line.partition(":")
        if not sep:
            raise ValueError(f"{path}:{number}: expected 'build:TOKEN' or 'admin:TOKEN'")
        role, token = role.strip(), token.strip()
        try:
            check_token(role, token)
        except ValueError as e:
            raise ValueError(f"{path}:{number}: {e}") from None
        found[role].append(token)
    tokens = Tokens(build=tuple(found["build"]), admin=tuple(found["admin"]))
    if not tokens:
        raise ValueError(f"the token file {path} holds no token")
    return tokens


def is_loopback(listen: str) -> bool:
    """True when a gRPC listen address can only be reached from this machine."""
    if listen.startswith(("unix:", "unix-abstract:")):
        return True
    host = listen.rsplit(":", 1)[0] if ":" in listen else listen
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # an empty host, a name or a wildcard: reachable from elsewhere


def check_listen(listen: str, tokens: Tokens) -> None:
    if not tokens and not is_loopback(listen):
        raise ValueError(
            f"refusing to listen on {listen} without tokens: anyone who reaches it could run builds. "
            "Give --token-file FILE (lines 'build:TOKEN' and 'admin:TOKEN') or listen on 127.0.0.1"
        )


def _digest(token: str | bytes) -> bytes:
    return hashlib.sha256(token.encode() if isinstance(token, str) else token).digest()


class TokenChecker:
    def __init__(self, tokens: Tokens) -> None:
        self._known = [(role, _digest(t)) for role, ts in (("build", tokens.build), ("admin", tokens.admin)) for t in ts]

    def role_of(self, authorization: str | bytes | None) -> str | None:
        """The role a header's bearer token has, or None. Compares against every token, whatever matches."""
        if not authorization:
            return None
        if isinstance(authorization, bytes):
            authorization = authorization.decode("latin-1")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        candidate = _digest(token.strip())
        role = None
        for known_role, known in self._known:
            if hmac.compare_digest(candidate, known) and role != "admin":
                role = known_role
        return role


def _metadata_value(metadata: Iterable[tuple[str, str | bytes]] | None, key: str) -> str | bytes | None:
    for k, v in metadata or ():
        if k.lower() == key:
            return v
    return None


def _denied(handler: grpc.RpcMethodHandler | None, code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    """A handler of the same shape as the real one that aborts before reading anything."""
    async def unary(request: object, context: grpc.aio.ServicerContext) -> None:
        await context.abort(code, message)

    async def streaming(request: object, context: grpc.aio.ServicerContext):  # type: ignore[no-untyped-def]
        await context.abort(code, message)
        yield  # pragma: no cover - abort raises

    request_streaming = bool(handler and handler.request_streaming)
    response_streaming = bool(handler and handler.response_streaming)
    if request_streaming and response_streaming:
        return grpc.stream_stream_rpc_method_handler(streaming)
    if request_streaming:
        return grpc.stream_unary_rpc_method_handler(unary)
    if response_streaming:
        return grpc.unary_stream_rpc_method_handler(streaming)
    return grpc.unary_unary_rpc_method_handler(unary)


class AuthInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, tokens: Tokens) -> None:
        self.checker = TokenChecker(tokens)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        if isinstance(method, bytes):
            method = method.decode()
        if method.startswith(OPEN_PREFIXES):
            return await continuation(handler_call_details)
        role = self.checker.role_of(_metadata_value(handler_call_details.invocation_metadata, "authorization"))
        if role is None:
            code, message = grpc.StatusCode.UNAUTHENTICATED, "this daemon needs a valid token: send 'authorization: Bearer <token>' metadata (cached --token, $CACHED_TOKEN)"
        elif method.startswith(ADMIN_PREFIX) and role != "admin":
            code, message = grpc.StatusCode.PERMISSION_DENIED, f"{method} needs an admin token; a build token may only build and move blobs"
        else:
            return await continuation(handler_call_details)
        log.info("call refused", extra={"method": method, "code": code.name})
        return _denied(await continuation(handler_call_details), code, message)
