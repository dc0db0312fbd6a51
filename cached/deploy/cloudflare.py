"""The Cloudflare API over httpx: envelopes, retries, the shared rate limiter, errors with codes.

Every call goes through ``_send``: it waits for a slot of the token's
limiter (given by the caller and shared by all the daemon's deploys), retries
429 (honouring ``Retry-After``), 5xx and network errors with exponential
backoff, and turns a failed envelope into a ``DeployError`` whose message
names the call and carries Cloudflare's code. The API token is only
ever put in the Authorization header: never logged, never in a message.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from cached.deploy.errors import DeployConflict, DeployError
from cached.deploy.limiter import RateLimiter

log = logging.getLogger("cached.deploy.cloudflare")

# Codes worth a sentence of their own (cloudflare-workers.md, Conventions).
CODE_HINTS = {
    10000: "authentication failed: check the API token and that it may edit Workers scripts",
    10007: "the worker does not exist",
    10021: "Cloudflare refused the Worker as invalid (or its startup exceeded the CPU/memory limit)",
    10027: "the Worker script is too large",
    10220: "rollback blocked: the version's secrets changed since; roll back with force to go ahead",
}


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5            # tries in all, the first included
    base_s: float = 0.5          # first backoff; doubles each time, with jitter
    max_backoff_s: float = 30.0
    max_retry_after_s: float = 300.0


@dataclass
class ApiError:
    code: int
    message: str


class CloudflareApi:
    """One account's Workers API. Safe to share between concurrent deploys."""

    def __init__(
        self,
        *,
        base_url: str,
        account_id: str,
        token: str,
        limiter: RateLimiter,
        retry: RetryPolicy = RetryPolicy(),
        timeout_s: float = 120.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.account_id = account_id
        self._token = token
        self.limiter = limiter
        self.retry = retry
        self._client = httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)
        self.requests = 0  # calls sent, retries included

    def __repr__(self) -> str:  # never shows the token
        return f"CloudflareApi({self.base_url!r}, account={self.account_id!r})"

    async def close(self) -> None:
        await self._client.aclose()

    # -- the calls --------------------------------------------------------------------
    def _account(self, path: str) -> str:
        return f"/accounts/{self.account_id}{path}"

    async def worker_exists(self, name: str) -> bool:
        """``GET /workers/services/{name}``: 404 with code 10007 means not yet created."""
        try:
            await self._send("GET", self._account(f"/workers/services/{name}"))
        except DeployError as e:
            if e.status == 404 or e.code == 10007:
                return False
            raise
        return True

    async def upload_session(self, name: str, manifest: dict[str, dict[str, object]]) -> tuple[str, list[list[str]]]:
        result = await self._send(
            "POST", self._account(f"/workers/scripts/{name}/assets-upload-session"), json={"manifest": manifest},
        )
        jwt = result.get("jwt") if isinstance(result, dict) else None
        if not isinstance(jwt, str) or not jwt:
            raise DeployError(f"Cloudflare's upload session for {name} returned no token")
        buckets = result.get("buckets") or []
        return jwt, [list(b) for b in buckets]

    async def upload_bucket(self, upload_jwt: str, parts: list[tuple[str, bytes, str]]) -> str | None:
        """One bucket: ``(hash, base64 bytes, content type)`` parts. Returns the completion token when this one completed the set."""
        files = [(h, (h, data, kind)) for h, data, kind in parts]
        result = await self._send(
            "POST", self._account("/workers/assets/upload"), params={"base64": "true"}, files=files, token=upload_jwt,
        )
        jwt = result.get("jwt") if isinstance(result, dict) else None
        return jwt if isinstance(jwt, str) and jwt else None

    async def put_script(self, name: str, metadata: dict[str, object], modules: dict[str, str]) -> dict[str, Any]:
        """Creates (or replaces and deploys) a worker: only used to create one."""
        return await self._send("PUT", self._account(f"/workers/scripts/{name}"), **_script_form(metadata, modules))

    async def upload_version(self, name: str, metadata: dict[str, object], modules: dict[str, str]) -> dict[str, Any]:
        """A new version of an existing worker; not deployed by itself.

        A 5xx or a network error may come after Cloudflare created the version:
        before sending it again, the versions are listed and one carrying this
        upload's ``workers/tag`` annotation (unique per deploy attempt) is taken
        as the answer, so a retry never leaves a duplicate version.
        """
        annotations = metadata.get("annotations")
        tag = annotations.get("workers/tag") if isinstance(annotations, dict) else None

        async def already_there() -> dict[str, Any] | None:
            return await self.find_version(name, str(tag)) if tag else None

        return await self._send(
            "POST", self._account(f"/workers/scripts/{name}/versions"), **_script_form(metadata, modules),
            recover=already_there,
        )

    async def list_versions(self, name: str) -> list[dict[str, Any]]:
        """``GET .../versions``: the newest versions first (``result.items``)."""
        result = await self._send("GET", self._account(f"/workers/scripts/{name}/versions"))
        items = result.get("items") if isinstance(result, dict) else result
        return [v for v in items or [] if isinstance(v, dict)]

    async def find_version(self, name: str, tag: str) -> dict[str, Any] | None:
        """The version whose ``workers/tag`` annotation is ``tag``, if Cloudflare holds one."""
        for v in await self.list_versions(name):
            annotations = v.get("annotations")
            if isinstance(annotations, dict) and annotations.get("workers/tag") == tag and v.get("id"):
                return v
        return None

    async def deploy_version(self, name: str, version_id: str, *, message: str = "", force: bool = False) -> dict[str, Any]:
        body: dict[str, object] = {"strategy": "percentage", "versions": [{"version_id": version_id, "percentage": 100}]}
        if message:
            body["annotations"] = {"workers/message": message}
        params = {"force": "true"} if force else None
        return await self._send("POST", self._account(f"/workers/scripts/{name}/deployments"), json=body, params=params)

    async def account_subdomain(self) -> str:
        result = await self._send("GET", self._account("/workers/subdomain"))
        sub = result.get("subdomain") if isinstance(result, dict) else None
        if not isinstance(sub, str) or not sub:
            raise DeployError("this Cloudflare account has no workers.dev subdomain: register one in the dashboard")
        return sub

    async def enable_subdomain(self, name: str) -> None:
        await self._send(
            "POST", self._account(f"/workers/scripts/{name}/subdomain"), json={"enabled": True, "previews_enabled": True},
        )

    # -- transport ----------------------------------------------------------------------
    async def _send(
        self,
        method: str,
        path: str,
        *,
        json: object = None,
        params: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
        files: list[tuple[str, tuple[str, bytes | str, str]]] | None = None,
        token: str | None = None,
        recover: Callable[[], Awaitable[Any]] | None = None,
    ) -> Any:
        """``recover``, for calls that are not idempotent: asked before each retry whether the
        failed attempt took effect after all; what it returns (unless None) is the result."""
        headers = {"Authorization": f"Bearer {token or self._token}"}
        what = f"{method} {path}"
        attempt = 0
        while True:
            attempt += 1
            await self.limiter.acquire()
            self.requests += 1
            started = time.perf_counter()
            try:
                response = await self._client.request(
                    method, self.base_url + path, headers=headers, json=json, params=params, data=data, files=files,
                )
            except httpx.TransportError as e:
                if attempt >= self.retry.attempts:
                    raise DeployError(f"Cloudflare API unreachable: {what}: {type(e).__name__} after {attempt} attempts") from None
                await self._backoff(attempt, None, what, f"network error {type(e).__name__}")
                if (found := await self._recovered(recover, what)) is not None:
                    return found
                continue
            status = response.status_code
            error = _first_error(response)
            log.debug("cloudflare call", extra={"call": what, "status": status, "ms": round((time.perf_counter() - started) * 1000, 1)})
            if status == 429 or status >= 500:
                if attempt >= self.retry.attempts:
                    kind = "rate limited (HTTP 429)" if status == 429 else f"server error (HTTP {status})"
                    raise DeployError(
                        f"Cloudflare API {kind}: {what} failed {attempt} times{_code_text(error)}",
                        code=error.code if error else 0, status=status,
                    )
                await self._backoff(attempt, _retry_after(response), what, f"HTTP {status}")
                if status >= 500 and (found := await self._recovered(recover, what)) is not None:
                    return found
                continue
            return _result(response, what, error)

    async def _recovered(self, recover: Callable[[], Awaitable[Any]] | None, what: str) -> Any:
        if recover is None:
            return None
        found = await recover()
        if found is not None:
            log.info("cloudflare call had taken effect before it failed: not sent again", extra={"call": what})
        return found

    async def _backoff(self, attempt: int, retry_after: float | None, what: str, why: str) -> None:
        if retry_after is not None:
            delay = min(retry_after, self.retry.max_retry_after_s)
        else:
            delay = min(self.retry.base_s * (2 ** (attempt - 1)), self.retry.max_backoff_s)
            delay *= 0.5 + random.random() / 2
        log.info("cloudflare call retried", extra={"call": what, "why": why, "attempt": attempt, "delay_s": round(delay, 3)})
        await asyncio.sleep(delay)


def _script_form(metadata: dict[str, object], modules: dict[str, str]) -> dict[str, Any]:
    """multipart/form-data: ``metadata`` (JSON) first, then one part per module."""
    files = [(name, (name, source.encode(), "application/javascript+module")) for name, source in modules.items()]
    return {"data": {"metadata": json.dumps(metadata)}, "files": files}


def _first_error(response: httpx.Response) -> ApiError | None:
    try:
        body = response.json()
    except ValueError:
        return None
    errors = body.get("errors") if isinstance(body, dict) else None
    if errors and isinstance(errors, list) and isinstance(errors[0], dict):
        try:
            code = int(errors[0].get("code") or 0)
        except (TypeError, ValueError):
            code = 0
        return ApiError(code, str(errors[0].get("message") or ""))
    return None


def _code_text(error: ApiError | None) -> str:
    if error is None:
        return ""
    hint = CODE_HINTS.get(error.code)
    return f" (code {error.code}: {error.message})" + (f"; {hint}" if hint else "")


def _result(response: httpx.Response, what: str, error: ApiError | None) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = None
    ok = isinstance(body, dict) and body.get("success") is True and 200 <= response.status_code < 300
    if ok:
        return body.get("result")
    status = response.status_code
    code = error.code if error else 0
    detail = f"code {code}: {error.message}" if error else f"HTTP {status} without an API envelope"
    hint = CODE_HINTS.get(code) or ("authentication failed: check the API token" if status in (401, 403) else "")
    message = f"Cloudflare API error on {what}: {detail}" + (f"; {hint}" if hint else "")
    cls = DeployConflict if code == 10220 else DeployError
    raise cls(message, code=code, status=status)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
