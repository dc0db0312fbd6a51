"""The one way out of a fetch step's sandbox: the daemon's egress proxy to the registries.

A run whose spec has ``egress`` (npm's install and resolution steps) gets a
network namespace of its own, as the build step does, so it has no route to
the host's network, its loopback ports (the daemon's gRPC port included), the
LAN or a metadata address. In that namespace only ``lo`` is up, and the
launcher (``enter.py``), before anything of the run starts, binds a TCP
listener on the namespace's own ``127.0.0.1:PROXY_PORT`` and sends it to the
daemon over a socketpair (``SCM_RIGHTS``). A socket keeps the namespace it was
made in, so the daemon accepts, on its event loop, the connections made
inside that one sandbox, and no other. npm finds the proxy through the run's
environment (``npm_config_proxy`` and ``npm_config_https_proxy``, which the
runner adds; they take precedence over any project ``.npmrc``).

The proxy lets through, to the registry's origin (scheme, host and port of
npm's ``registry`` setting) and to the origins of the registries the
operator allowlisted (``cached serve --allow-registry``, which a tenant's
``.npmrc`` may then name), and nowhere else:

- ``CONNECT host:port`` when that is one of them: a tunnel, so TLS stays
  end to end between npm and the registry;
- for an ``http`` registry (a test or LAN registry), requests in absolute
  form (``GET http://host:port/path``), forwarded in origin form over one
  upstream connection per client connection (so every request of that
  connection must go to the origin its first one went to).

Anything else (another host or port, a request in origin form, a body sent
chunked, a malformed head) gets ``403`` (or ``400``), a warning in the
daemon's log and a line in the run's output, so the build's log says what
was refused and why. The daemon resolves and connects to the registry
itself: a run chooses nothing but the request's path.

With ``sandbox = off`` there is no namespace: the proxy listens on the host's
loopback (an ephemeral port) and npm is pointed at it all the same, which
keeps npm's own fetches to the registry but confines nothing else.

This module must never:
- connect anywhere but the policy's origins;
- let a connection outlive its run (``close`` ends the listener, every
  tunnel and every upstream connection);
- block the event loop (everything is asyncio; nothing reads a file).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from .ring import Tail
from .spec import OutputSink, SandboxSpec

log = logging.getLogger("cached.sandbox.egress")

# The proxy's port on the sandbox's own loopback: the same in every run (each
# run has its own namespace, where nothing else listens), so the install
# environment is fixed.
PROXY_PORT = 3128
PROXY_ENV_NAMES = ("npm_config_proxy", "npm_config_https_proxy")
MAX_HEAD_BYTES = 32 << 10
HEAD_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 30.0
MAX_CONNECTIONS = 64   # at once, per run (npm opens at most maxsockets=15 per origin)
MAX_REPORTED = 20      # refusals told in the run's output; all are logged
_CHUNK = 64 << 10
_RECEIVE_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Origin:
    """Scheme, host and port of one registry: what a fetch step may connect to."""

    host: str  # lower case; an IPv6 address without brackets
    port: int
    tls: bool  # https: tunnels only; http: absolute-form requests too

    @classmethod
    def for_url(cls, url: str) -> "Origin":
        """From a registry URL (``https://host[:port]/[path]``)."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as e:
            raise ValueError(f"registry {url!r} is not a URL: {e}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"registry {url!r} must be an http:// or https:// URL with a host")
        if parts.username or parts.password:
            raise ValueError("the registry URL must not hold credentials (put them in npm's config as _authToken)")
        tls = parts.scheme == "https"
        return cls(host=parts.hostname.lower(), port=port or (443 if tls else 80), tls=tls)

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def origin(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.authority}"

    def allows(self, host: str, port: int) -> bool:
        return host.lower() == self.host and port == self.port


@dataclass(frozen=True)
class EgressPolicy(Origin):
    """The origins a fetch step may reach: the registry's (its own fields) and ``also``,
    those of the registries the operator allowlisted."""

    also: tuple[Origin, ...] = ()

    @classmethod
    def for_registry(cls, url: str) -> "EgressPolicy":
        """From npm's ``registry`` setting (``https://host[:port]/[path]``)."""
        return cls.for_registries(url, ())

    @classmethod
    def for_registries(cls, url: str, allowed: Iterable[str]) -> "EgressPolicy":
        """The registry ``url`` and every allowlisted one (``cached serve --allow-registry``)."""
        main = Origin.for_url(url)
        also = tuple(dict.fromkeys(o for o in map(Origin.for_url, allowed) if o != main))
        return cls(host=main.host, port=main.port, tls=main.tls, also=also)

    @property
    def origins(self) -> tuple[Origin, ...]:
        return (Origin(self.host, self.port, self.tls), *self.also)

    def find(self, host: str, port: int) -> Origin | None:
        """The origin at ``host:port``, or None when the policy has none there."""
        return next((o for o in self.origins if o.allows(host, port)), None)

    def allows(self, host: str, port: int) -> bool:
        return self.find(host, port) is not None

    @property
    def described(self) -> str:
        """The origins in words, for a refusal: "the registry (URL)" or "the registries (URL, URL)"."""
        if not self.also:
            return f"the registry ({self.origin})"
        return f"the registries ({', '.join(o.origin for o in self.origins)})"


def proxy_env(port: int) -> dict[str, str]:
    """What npm needs to send every request through the proxy on ``127.0.0.1:port``."""
    url = f"http://127.0.0.1:{port}"
    return {name: url for name in PROXY_ENV_NAMES}


def parse_authority(text: str) -> tuple[str, int] | None:
    """``host:port`` or ``[v6]:port`` -> (host, port); None when malformed."""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            return None
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or ":" in host:
            return None
    if not host or not port_text.isdigit() or len(port_text) > 5 or not 0 < int(port_text) < 65536:
        return None
    if any(c in host for c in "/@?#\\ \t"):
        return None
    return host.lower(), int(port_text)


class BadRequest(ValueError):
    pass


@dataclass
class RequestHead:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]

    @classmethod
    def parse(cls, raw: bytes) -> "RequestHead":
        text = raw.decode("latin-1")
        if not text.endswith("\r\n\r\n"):
            raise BadRequest("incomplete request head")
        lines = text[:-4].split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[0].isalpha():
            raise BadRequest(f"bad request line {lines[0][:200]!r}")
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip() or "\n" in line or "\r" in line:
                raise BadRequest(f"bad header line {line[:200]!r}")
            headers.append((name, value.strip()))
        return cls(parts[0], parts[1], parts[2], headers)

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name]

    def body_length(self) -> int:
        """The body's length; chunked or ambiguous bodies are refused (npm's fetches send none)."""
        if self.header("transfer-encoding"):
            raise BadRequest("a chunked request body")
        lengths = set(self.header("content-length"))
        if len(lengths) > 1 or any(not v.isdigit() for v in lengths):
            raise BadRequest("a bad Content-Length")
        return int(next(iter(lengths))) if lengths else 0

    def origin_form(self, authority: str, path: str) -> bytes:
        """The head for the origin server: origin-form target, its Host, no proxy headers."""
        drop = {"host", "proxy-connection", "proxy-authorization"}
        lines = [f"{self.method} {path} {self.version}", f"Host: {authority}"]
        lines += [f"{k}: {v}" for k, v in self.headers if k.lower() not in drop]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def absolute_target(target: str) -> tuple[str, int, str] | None:
    """``http://host[:port]/path?query`` -> (host, port, origin-form path); None otherwise."""
    try:
        parts = urlsplit(target)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "http" or not parts.hostname or parts.username or parts.password or "@" in parts.netloc:
        return None
    path = parts.path or "/"
    if not path.startswith("/"):
        return None
    return parts.hostname.lower(), port or 80, path + (f"?{parts.query}" if parts.query else "")


@dataclass
class EgressStats:
    allowed: int = 0
    refused: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    refusals: list[str] = field(default_factory=list)


class EgressProxy:
    """Serves one run's proxy listener until ``close``."""

    def __init__(self, policy: EgressPolicy, sink: OutputSink | None, label: str = "run") -> None:
        self.policy = policy
        self.sink = sink
        self.label = label
        self.stats = EgressStats()
        self._server: asyncio.AbstractServer | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._closed = False

    async def serve(self, listener: socket.socket) -> None:
        """Start accepting on ``listener`` (it is the proxy's from now on)."""
        if self._closed:
            listener.close()
            return
        self._server = await asyncio.start_server(self._handle, sock=listener, limit=MAX_HEAD_BYTES)

    async def close(self) -> None:
        self._closed = True
        if self._server is not None:
            self._server.close()
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        if handlers:
            await asyncio.gather(*handlers, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    # -- one client connection ------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        upstreams: list[asyncio.StreamWriter] = []  # closed here whatever ends the connection
        try:
            if self._closed:
                return
            if len(self._handlers) > MAX_CONNECTIONS:
                await self._answer(writer, 503, "too many connections at once")
                return
            try:
                head = await asyncio.wait_for(_read_head(reader), HEAD_TIMEOUT_S)
            except (asyncio.TimeoutError, BadRequest, ConnectionError) as e:
                await self._answer(writer, 400, f"bad request: {e}")
                return
            if head is None:
                return
            if head.method == "CONNECT":
                await self._connect(head, reader, writer, upstreams)
            else:
                await self._forward(head, reader, writer, upstreams)
        except asyncio.CancelledError:
            pass
        except (ConnectionError, OSError):
            pass
        finally:
            self._handlers.discard(task)  # type: ignore[arg-type]
            for w in (writer, *upstreams):
                with contextlib.suppress(Exception):
                    w.close()

    async def _connect(
        self, head: RequestHead, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstreams: list[asyncio.StreamWriter]
    ) -> None:
        target = parse_authority(head.target)
        origin = self.policy.find(*target) if target is not None else None
        if origin is None:
            await self._refuse(writer, f"CONNECT {head.target}")
            return
        opened = await self._open_upstream(writer, f"CONNECT {head.target}", upstreams, origin)
        if opened is None:
            return
        up_reader, up_writer = opened
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await _join(self._copy(reader, up_writer, up=True), self._copy(up_reader, writer, up=False))

    async def _forward(
        self, head: RequestHead, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstreams: list[asyncio.StreamWriter]
    ) -> None:
        """Plain HTTP to an ``http`` registry: each request on the connection is checked, then sent in
        origin form to the origin of the connection's first request (no other: one upstream per connection)."""
        parsed = absolute_target(head.target)
        origin = self.policy.find(parsed[0], parsed[1]) if parsed is not None else None
        if origin is None or origin.tls:
            await self._refuse(writer, f"{head.method} {head.target}")
            return
        upstream: Origin = origin  # every later request of this connection must go there too
        try:
            head.body_length()
        except BadRequest as e:
            await self._refuse(writer, f"{head.method} {head.target} ({e})")
            return
        opened = await self._open_upstream(writer, f"{head.method} {head.target}", upstreams, upstream)
        if opened is None:
            return
        up_reader, up_writer = opened

        async def requests() -> None:
            """Each request in turn; the first one refused ends the connection's
            requests (what was already sent is still answered)."""
            current: RequestHead | None = head
            while current is not None:
                target = absolute_target(current.target)
                if target is None or not upstream.allows(target[0], target[1]):
                    self._record_refusal(f"{current.method} {current.target}")
                    break
                try:
                    length = current.body_length()
                except BadRequest as e:
                    self._record_refusal(f"{current.method} {current.target} ({e})")
                    break
                data = current.origin_form(upstream.authority, target[2])
                up_writer.write(data)
                self.stats.bytes_up += len(data)
                while length:
                    chunk = await reader.read(min(length, _CHUNK))
                    if not chunk:
                        raise ConnectionResetError("the client closed the connection mid-body")
                    length -= len(chunk)
                    up_writer.write(chunk)
                    self.stats.bytes_up += len(chunk)
                await up_writer.drain()
                try:
                    current = await _read_head(reader)
                except BadRequest as e:
                    self._record_refusal(f"a bad request ({e})")
                    break
            with contextlib.suppress(OSError):
                up_writer.write_eof()

        await _join(requests(), self._copy(up_reader, writer, up=False))

    async def _open_upstream(
        self, writer: asyncio.StreamWriter, what: str, upstreams: list[asyncio.StreamWriter], origin: Origin
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """A connection to ``origin`` (one of the policy's) for an allowed request, counted and
        added to ``upstreams`` (the handler closes it); None, the client answered 502, if
        the registry cannot be reached."""
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(origin.host, origin.port), CONNECT_TIMEOUT_S)
        except (OSError, asyncio.TimeoutError) as e:
            log.warning("egress: cannot reach the registry", extra={"run": self.label, "request": what, "registry": origin.authority, "error": str(e)})
            await self._answer(writer, 502, f"cannot reach the registry {origin.authority}: {e}")
            return None
        upstreams.append(up_writer)
        self.stats.allowed += 1
        return up_reader, up_writer

    async def _copy(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, up: bool) -> None:
        while True:
            data = await src.read(_CHUNK)
            if not data:
                break
            dst.write(data)
            if up:
                self.stats.bytes_up += len(data)
            else:
                self.stats.bytes_down += len(data)
            await dst.drain()
        with contextlib.suppress(OSError):
            if dst.can_write_eof():
                dst.write_eof()

    def _record_refusal(self, what: str) -> None:
        self.stats.refused += 1
        what = what[:300]
        if len(self.stats.refusals) < MAX_REPORTED:
            self.stats.refusals.append(what)
        log.warning("egress refused", extra={"run": self.label, "request": what, "allowed": [o.origin for o in self.policy.origins]})
        if self.sink is not None and self.stats.refused <= MAX_REPORTED:
            with contextlib.suppress(Exception):  # the sink's failure must not break the proxy
                self.sink.line("stderr", f"[cached] refused {what}: this step reaches only {self.policy.described}")

    async def _refuse(self, writer: asyncio.StreamWriter, what: str) -> None:
        self._record_refusal(what)
        await self._answer(writer, 403, f"cached: this step reaches only {self.policy.described}; refused {what[:300]}")

    async def _answer(self, writer: asyncio.StreamWriter, status: int, text: str) -> None:
        reason = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway", 503: "Service Unavailable"}[status]
        body = (text + "\n").encode("utf-8", errors="replace")
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
        )
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.drain(), 5)


async def _read_head(reader: asyncio.StreamReader) -> RequestHead | None:
    """The next request head; None at a clean end of the connection."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if e.partial.strip():
            raise BadRequest("the connection closed mid-head") from None
        return None
    except asyncio.LimitOverrunError:
        raise BadRequest(f"a request head over {MAX_HEAD_BYTES} bytes") from None
    return RequestHead.parse(raw)


async def _join(*directions: Awaitable[None]) -> None:
    """Run both directions of a connection; an error in one (or cancellation) ends both."""
    tasks = [asyncio.ensure_future(d) for d in directions]
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if task.exception() is not None:
                for other in pending:
                    other.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                return
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class RunEgress:
    """The egress of one sandboxed run: its proxy, and how the listener reaches the daemon.

    ``namespaced``: the launcher makes the listener inside the run's network
    namespace and sends it over ``child_fd`` (pass it to the launcher and put
    ``payload`` in its spec; call ``launched`` once it runs). Otherwise
    (``sandbox = off``) the proxy listens on the host's loopback at once.
    """

    def __init__(self, policy: EgressPolicy, sink: OutputSink | None, *, namespaced: bool, label: str = "run") -> None:
        self.proxy = EgressProxy(policy, sink, label)
        self.namespaced = namespaced
        self._parent: socket.socket | None = None
        self._child: socket.socket | None = None
        self._listener: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None
        if namespaced:
            self._parent, self._child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            self.port = PROXY_PORT
        else:
            self._listener = socket.create_server(("127.0.0.1", 0))
            self.port = self._listener.getsockname()[1]

    @property
    def child_fd(self) -> int | None:
        return self._child.fileno() if self._child is not None else None

    @property
    def payload(self) -> dict[str, int] | None:
        """What the launcher needs (see ``enter.py``): the socketpair end and the port to listen on."""
        fd = self.child_fd
        return None if fd is None else {"fd": fd, "port": self.port}

    def env(self, env: Mapping[str, str]) -> dict[str, str]:
        """The run's environment with the proxy in it (over any value it had)."""
        return {**env, **proxy_env(self.port)}

    def launched(self) -> None:
        """The launcher runs: drop our copy of its end, start serving."""
        if self._child is not None:
            self._child.close()
            self._child = None
        self._task = asyncio.ensure_future(self._serve())

    async def _serve(self) -> None:
        try:
            if self._listener is None:
                self._listener = await asyncio.wait_for(self._receive(), _RECEIVE_TIMEOUT_S)
            if self._listener is not None:
                listener, self._listener = self._listener, None
                await self.proxy.serve(listener)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - the run then has no way out at all, which is safe
            log.warning("egress: the proxy did not start", extra={"run": self.proxy.label, "error": str(e)})

    async def _receive(self) -> socket.socket | None:
        """The listening socket the launcher sends; None if it exits first (a setup failure it reports itself)."""
        assert self._parent is not None
        loop = asyncio.get_running_loop()
        sock = self._parent
        sock.setblocking(False)
        future: asyncio.Future[list[int] | None] = loop.create_future()

        def ready() -> None:
            if future.done():
                return
            try:
                msg, fds, _flags, _addr = socket.recv_fds(sock, 16, 4, socket.MSG_CMSG_CLOEXEC)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                future.set_exception(e)
                return
            future.set_result(fds if msg else None)

        loop.add_reader(sock.fileno(), ready)
        try:
            fds = await future
        finally:
            loop.remove_reader(sock.fileno())
        if not fds:
            return None
        for extra in fds[1:]:
            with contextlib.suppress(OSError):
                socket.close(extra)
        listener = socket.socket(fileno=fds[0])
        if (
            listener.family != socket.AF_INET or listener.type != socket.SOCK_STREAM
            or not listener.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        ):
            listener.close()
            raise OSError("the launcher sent something else than a listening TCP socket")
        return listener

    async def close(self) -> None:
        """End everything of this run's egress; then log what went through and what was refused."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.proxy.close()
        for sock in (self._parent, self._child, self._listener):
            if sock is not None:
                sock.close()
        self._parent = self._child = self._listener = None
        s = self.proxy.stats
        log.info("egress", extra={
            "run": self.proxy.label, "registry": self.proxy.policy.origin, "also": [o.origin for o in self.proxy.policy.also], "connections": s.allowed,
            "refused": s.refused, "bytes_up": s.bytes_up, "bytes_down": s.bytes_down,
        })


def open_egress(
    spec: SandboxSpec, sink: OutputSink | None, tail: Tail | None = None, *, namespaced: bool
) -> tuple[RunEgress | None, SandboxSpec]:
    """For ``Sandbox.run``: the run's egress (None without ``spec.egress``) and
    the spec to launch, whose environment points npm at the proxy. What it
    refuses goes to ``sink`` and ``tail`` as the child's stderr lines do."""
    if spec.egress is None:
        return None, spec
    egress = RunEgress(spec.egress, _Tee(sink, tail), namespaced=namespaced, label=spec.label)
    return egress, replace(spec, env=egress.env(spec.env))


class _Tee:
    def __init__(self, sink: OutputSink | None, tail: Tail | None) -> None:
        self.sink, self.tail = sink, tail

    def line(self, stream: str, text: str) -> None:
        if self.tail is not None:
            self.tail.add(text)
        if self.sink is not None:
            self.sink.line(stream, text)


def egress_fds(egress: RunEgress | None) -> tuple[int, ...]:
    """The fds the launcher must inherit for ``egress``."""
    fd = egress.child_fd if egress is not None else None
    return () if fd is None else (fd,)
