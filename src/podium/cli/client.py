"""The CLI's HTTP client: JSON in and out, and error responses as Podium's own errors.

A 4xx/5xx answer becomes the matching ``podium.errors`` exception carrying the server's
``detail``, so commands let it out and ``output.run_cli`` prints one line and exits.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx

import podium
from podium.cli.settings import Login
from podium.errors import Conflict, Forbidden, Invalid, NotFound, PodiumError, TooLarge, Unauthorized

ERRORS: dict[int, type[PodiumError]] = {
    400: Invalid,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: TooLarge,
    422: Invalid,
}
CHUNK_SIZE = 64 * 1024

ProgressCallback = Callable[[int, int | None], None]
"""Called as ``callback(bytes_sent, total_bytes_or_None)`` after each chunk of an upload."""


def validation_detail(detail: list[Any]) -> str:
    """FastAPI's list of validation errors as one line: ``name: field required; ...``."""
    parts = []
    for item in detail:
        if not isinstance(item, dict):
            parts.append(str(item))
            continue
        loc = [str(p) for p in item.get("loc", []) if p not in ("body", "query", "path", "header")]
        msg = str(item.get("msg", "invalid"))
        msg = msg[:1].lower() + msg[1:]
        parts.append(f"{'.'.join(loc)}: {msg}" if loc else msg)
    return "; ".join(parts) or "invalid request"


def error_for(response: httpx.Response) -> PodiumError:
    """The Podium error an error response stands for, with the server's reason as its detail."""
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):
        text = validation_detail(detail)
    elif detail is not None:
        text = str(detail)
    else:
        text = response.text.strip()[:200] or response.reason_phrase
    cls = ERRORS.get(response.status_code, PodiumError)
    if cls is Unauthorized:
        text += ": set PODIUM_TOKEN or run `podium login`"
    elif cls is PodiumError:
        text = f"the server answered {response.status_code}: {text}"
    return cls(text)


def parse(response: httpx.Response) -> Any:
    """A success response's JSON; its text when it is not JSON; None when it is empty."""
    if not response.content:
        return None
    if response.headers.get("content-type", "").startswith("application/json"):
        return response.json()
    return response.text


def tls_for(url: str) -> ssl.SSLContext | bool:
    """Certificates checked against the usual CA bundle for an ``https`` server. A plain
    ``http`` one needs none: loading the bundle would take longer than a short command's
    request, so it gets a context that trusts no certificate at all."""
    if url.lower().startswith("https:"):
        return True
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, against no CA: any TLS connection fails


class ApiClient:
    """Talks to one Podium server as one token; use as a context manager, or call ``close``."""

    def __init__(
        self, url: str, token: str | None = None, *, timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"User-Agent": f"podium-cli/{podium.__version__}", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport,
                                  verify=tls_for(self.url))

    @classmethod
    def from_login(cls, login: Login) -> ApiClient:
        return cls(login.url, login.token)

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    @contextmanager
    def _transport_errors(self) -> Iterator[None]:
        """Turn httpx's network failures into one readable PodiumError."""
        try:
            yield
        except httpx.ConnectError:
            raise PodiumError(f"cannot reach Podium at {self.url}: is `podium server` running?") from None
        except httpx.TimeoutException:
            raise PodiumError(f"Podium at {self.url} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise PodiumError(f"talking to Podium at {self.url} failed: {exc}") from None

    def request(self, method: str, path: str, **kw: Any) -> Any:
        """Send a request (httpx keyword arguments) and return the parsed answer, or raise."""
        with self._transport_errors():
            response = self._http.request(method, path, **kw)
        if response.is_error:
            raise error_for(response)
        return parse(response)

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.request("POST", path, **kw)

    def patch(self, path: str, **kw: Any) -> Any:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)

    @contextmanager
    def stream(self, method: str, path: str, **kw: Any) -> Iterator[httpx.Response]:
        """A response whose body is read as it arrives (``iter_lines``, ``iter_bytes``).

        An error status raises before the body is handed out; network failures while
        reading become PodiumError too. Pass ``timeout=None`` to follow without end.
        """
        with self._transport_errors(), self._http.stream(method, path, **kw) as response:
            if response.is_error:
                response.read()
                raise error_for(response)
            yield response

    def stream_json_lines(self, method: str, path: str, **kw: Any) -> Iterator[Any]:
        """Each line of an NDJSON answer, parsed, as it arrives (blank lines skipped)."""
        with self.stream(method, path, **kw) as response:
            for line in response.iter_lines():
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except ValueError:
                    raise PodiumError(f"Podium at {self.url} sent a line that is not JSON: {line[:80]!r}") from None

    def upload(
        self, path: str, file: str | os.PathLike[str] | IO[bytes],
        progress_callback: ProgressCallback | None = None, *, method: str = "POST",
        content_type: str = "application/octet-stream", **kw: Any,
    ) -> Any:
        """Stream a file as the request body, reporting progress; return the parsed answer.

        ``file`` is a path or an open binary file. The body is sent in chunks with a
        Content-Length when the size is known, so large tarballs are never held in memory.
        """
        if isinstance(file, (str, os.PathLike)):
            with Path(file).open("rb") as handle:
                return self.upload(path, handle, progress_callback, method=method,
                                   content_type=content_type, **kw)
        total = _remaining_size(file)
        headers = {"Content-Type": content_type, **kw.pop("headers", {})}
        if total is not None:
            headers["Content-Length"] = str(total)

        def chunks() -> Iterator[bytes]:
            sent = 0
            while chunk := file.read(CHUNK_SIZE):
                sent += len(chunk)
                yield chunk
                if progress_callback is not None:
                    progress_callback(sent, total)

        return self.request(method, path, content=chunks(), headers=headers, **kw)


def _remaining_size(file: IO[bytes]) -> int | None:
    """Bytes left to read in ``file``, or None when it cannot seek (a pipe)."""
    try:
        if not file.seekable():
            return None
        here = file.tell()
        end = file.seek(0, os.SEEK_END)
        file.seek(here)
    except OSError:
        return None
    return end - here
