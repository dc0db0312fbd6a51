"""Bearer-token auth: a grpc.aio server interceptor and the rule about where the daemon may listen.

When tokens are configured, every call needs ``authorization: Bearer <token>``
in its metadata. A missing or unknown token is ``UNAUTHENTICATED``; a build
token calling ``Admin`` is ``PERMISSION_DENIED`` (an admin token may call
everything). Health and reflection stay open, so load balancers and
``grpcurl list`` work without a token. Tokens are compared in constant time
(over their SHA-256, so not even their length leaks).

A build token acts for the tenants its lines name, or for all with ``*``.
The interceptor is the one place that knows the caller: it runs each handler
with the caller in ``CALLER`` (a context variable of the call's task), and
every servicer that takes a tenant calls ``authorize_tenant`` before it does
anything else. A token used for another tenant is ``PERMISSION_DENIED``.
A call that reaches a servicer without passing the interceptor has no caller
and is refused (fail closed); the daemon always installs the interceptor,
and without tokens (loopback only) every caller acts for every tenant.

A daemon that listens beyond loopback must have tokens: it refuses to start
otherwise. Without tokens it listens only on a literal loopback address
(``127.0.0.1``, ``[::1]``) or a unix socket: a host name such as
``localhost`` is refused, since what it resolves to is not the daemon's to
decide.

Token file (``cached serve --token-file FILE``): one token a line, as
``build:TENANT:TOKEN`` (acts for one tenant; one line per tenant for
several), ``build:*:TOKEN`` (every tenant: the platform's backend) or
``admin:TOKEN`` (everything); blank lines and lines starting with ``#`` are
ignored; several tokens of one role are allowed (rotation). The old
two-field ``build:TOKEN`` form is refused at startup: it did not say which
tenants the token acts for.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
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
ALL_TENANTS = "*"
TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")  # the request id rule (cached.request.spec)
FORMS = "'build:TENANT:TOKEN', 'build:*:TOKEN' or 'admin:TOKEN'"


@dataclass(frozen=True)
class Tokens:
    """``build``: (tenant or ``*``, token) pairs; ``admin``: tokens."""

    build: tuple[tuple[str, str], ...] = ()
    admin: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.build or self.admin)


@dataclass(frozen=True)
class Caller:
    """Who a call acts as: its role and the tenants it may act for (None: every tenant)."""

    role: str
    tenants: frozenset[str] | None

    def may_act_for(self, tenant: str) -> bool:
        return self.role == "admin" or self.tenants is None or tenant in self.tenants


ANYONE = Caller("admin", None)  # a daemon without tokens (it listens on loopback only)
CALLER: ContextVar[Caller | None] = ContextVar("cached_caller", default=None)


def check_token(role: str, token: str) -> str:
    if role not in ROLES:
        raise ValueError(f"token role {role!r}: use 'build' or 'admin'")
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token) or not token.isprintable():
        raise ValueError(f"a {role} token must be at least {MIN_TOKEN_CHARS} printable characters without spaces")
    return token


def check_tenant_field(tenant: str) -> str:
    if tenant != ALL_TENANTS and not TENANT_PATTERN.fullmatch(tenant):
        raise ValueError(f"tenant {tenant!r} is not a tenant id (lowercase letters, digits, '-' and '_') nor '*' (every tenant)")
    return tenant


def parse_token_line(line: str) -> tuple[str, str, str]:
    """(role, tenant or '' for admin, token) of one line; raises ValueError saying what is wrong."""
    role, sep, rest = line.partition(":")
    role = role.strip()
    if not sep:
        raise ValueError(f"expected {FORMS}")
    if role == "admin":
        return role, "", check_token(role, rest.strip())
    if role != "build":
        check_token(role, rest.strip())  # names the bad role
    tenant, sep, token = rest.partition(":")
    if not sep:
        raise ValueError(
            "'build:TOKEN' does not say which tenants the token acts for; write 'build:TENANT:TOKEN' "
            "(one line per tenant) or 'build:*:TOKEN' (every tenant, for the platform's backend)"
        )
    return role, check_tenant_field(tenant.strip()), check_token(role, token.strip())


def load_token_file(path: Path) -> Tokens:
    """Reads ``build:TENANT:TOKEN`` / ``build:*:TOKEN`` / ``admin:TOKEN`` lines; raises ValueError naming the line at fault."""
    try:
        text = path.read_text()
    except OSError as e:
        raise ValueError(f"cannot read the token file {path}: {e.strerror}") from None
    build: list[tuple[str, str]] = []
    admin: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            role, tenant, token = parse_token_line(line)
        except ValueError as e:
            raise ValueError(f"{path}:{number}: {e}") from None
        if role == "admin":
            admin.append(token)
        else:
            build.append((tenant, token))
    tokens = Tokens(build=tuple(build), admin=tuple(admin))
    if not tokens:
        raise ValueError(f"the token file {path} holds no token")
    return tokens


def is_loopback(listen: str) -> bool:
    """True when a gRPC listen address can only be reached from this machine.

    Only a unix socket or a literal loopback IP counts: a host name (even
    ``localhost``) is whatever the resolver says, and gRPC may bind every
    address it resolves to.
    """
    if listen.startswith(("unix:", "unix-abstract:")):
        return True
    if listen.startswith("["):
        host, sep, _ = listen[1:].partition("]")
        if not sep:
            return False
    else:
        host = listen.rsplit(":", 1)[0] if ":" in listen else listen
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # an empty host, a name or a wildcard: reachable from elsewhere


def check_listen(listen: str, tokens: Tokens) -> None:
    if not tokens and not is_loopback(listen):
        raise ValueError(
            f"refusing to listen on {listen} without tokens: anyone who reaches it could run builds "
            "(only a literal loopback address such as 127.0.0.1 or [::1], or a unix socket, is served without tokens; "
            f"host names are refused). Give --token-file FILE (lines {FORMS}) or listen on 127.0.0.1"
        )


def _digest(token: str | bytes) -> bytes:
    return hashlib.sha256(token.encode() if isinstance(token, str) else token).digest()


class TokenChecker:
    def __init__(self, tokens: Tokens) -> None:
        self._known = [("build", tenant, _digest(t)) for tenant, t in tokens.build] + [("admin", "", _digest(t)) for t in tokens.admin]

    def caller_of(self, authorization: str | bytes | None) -> Caller | None:
        """Who a header's bearer token is, or None. Compares against every token, whatever matches."""
        if not authorization:
            return None
        if isinstance(authorization, bytes):
            authorization = authorization.decode("latin-1")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        candidate = _digest(token.strip())
        roles: set[str] = set()
        tenants: set[str] = set()
        for known_role, tenant, known in self._known:
            if hmac.compare_digest(candidate, known):
                roles.add(known_role)
                if tenant:
                    tenants.add(tenant)
        if not roles:
            return None
        if "admin" in roles:
            return Caller("admin", None)
        return Caller("build", None if ALL_TENANTS in tenants else frozenset(tenants))

    def role_of(self, authorization: str | bytes | None) -> str | None:
        """The role a header's bearer token has, or None."""
        caller = self.caller_of(authorization)
        return caller.role if caller is not None else None


async def authorize_tenant(context: grpc.aio.ServicerContext, tenant: str) -> None:
    """Aborts the call with PERMISSION_DENIED unless its caller may act for ``tenant``.

    Every servicer method that takes a tenant (builds, blobs, deploys) calls
    this first, before it reads or writes anything.
    """
    caller = CALLER.get()
    if caller is None:
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, "this call has no authenticated caller")
    elif not caller.may_act_for(tenant):
        log.info("tenant refused", extra={"tenant": tenant, "code": "PERMISSION_DENIED"})
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"this token does not act for tenant {tenant!r}")


def _as_caller(handler: grpc.RpcMethodHandler, caller: Caller) -> grpc.RpcMethodHandler:
    """The same handler, each behaviour run with ``CALLER`` set (in the call's own task)."""
    def wrap(behaviour):  # type: ignore[no-untyped-def]
        if behaviour is None:
            return None
        if inspect.isasyncgenfunction(behaviour):
            async def stream(request, context):  # type: ignore[no-untyped-def]
                CALLER.set(caller)
                async for item in behaviour(request, context):
                    yield item
            return stream

        async def call(request, context):  # type: ignore[no-untyped-def]
            CALLER.set(caller)
            result = behaviour(request, context)
            return await result if inspect.isawaitable(result) else result
        return call

    return handler._replace(  # type: ignore[attr-defined]
        unary_unary=wrap(handler.unary_unary), unary_stream=wrap(handler.unary_stream),
        stream_unary=wrap(handler.stream_unary), stream_stream=wrap(handler.stream_stream),
    )


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
    """Authenticates every call and runs its handler as its caller; without tokens every call is ``ANYONE``."""

    def __init__(self, tokens: Tokens) -> None:
        self.checker = TokenChecker(tokens)
        self.open = not tokens

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
        if self.open:
            caller: Caller | None = ANYONE
        else:
            caller = self.checker.caller_of(_metadata_value(handler_call_details.invocation_metadata, "authorization"))
        if caller is None:
            code, message = grpc.StatusCode.UNAUTHENTICATED, "this daemon needs a valid token: send 'authorization: Bearer <token>' metadata (cached --token, $CACHED_TOKEN)"
        elif method.startswith(ADMIN_PREFIX) and caller.role != "admin":
            code, message = grpc.StatusCode.PERMISSION_DENIED, f"{method} needs an admin token; a build token may only build, move blobs and deploy for its tenants"
        else:
            handler = await continuation(handler_call_details)
            return _as_caller(handler, caller) if handler is not None else handler
        log.info("call refused", extra={"method": method, "code": code.name})
        return _denied(await continuation(handler_call_details), code, message)
