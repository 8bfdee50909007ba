"""The pack's one HTTP client: whole-request deadlines, capped answers, allow-listed servers.

Every outbound request of the pack (GPT-SoVITS, Ollama, OpenAI-compatible servers,
ComfyUI servers) goes through `request()`:

- a deadline for the WHOLE request (connect, first byte and total): a per-read timeout
  lets a server that sends one byte every few seconds hold the caller forever, so a
  watchdog shuts the socket down when the total deadline passes;
- a cap on the answer's size (the Content-Length is refused up front, an endless body
  is cut off when it crosses the cap), so no answer can exhaust memory;
- no redirects (a 3xx is handed back as it is: a redirect could lead anywhere);
- `check_url()`: a URL that a graph input names must be one of the servers the
  settings configure (configs/global.yaml llm / comfyui / network sections) or list in
  `network.allowed_urls`, matched by exact scheme, name and port; loopback is allowed only
  when configured that way;
- `connect()`: a server's name is looked up ONCE per request and the socket goes to the
  address that was checked (no second lookup a DNS rebinding could answer differently);
  a name that resolves to a loopback, private or link-local address is refused unless it
  is a loopback name (localhost) resolving to loopback, or listed in `network.private_names`.
  An IP address written in the configuration is used as it is.

What a remote answers is never copied whole into messages: `excerpt()` keeps a short,
printable piece (errors end up on stderr, in run.json, in checkpoints and in prompts).
"""
from __future__ import annotations

import http.client
import json as jsonlib
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlencode, urlsplit

EXCERPT_CHARS = 200
GPT_SOVITS_URL_ENV = "ANIMATION_STUDIO_GPT_SOVITS_URL"  # the older way to configure the GPT-SoVITS server
CHUNK = 64 * 1024
MB = 1024 * 1024


class NetError(ConnectionError):
    """An HTTP request failed; `.kind` says how: unreachable | timeout | too_large | protocol | refused."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind


class URLNotAllowed(ValueError):
    """A URL is malformed or names a server that the settings do not allow."""


# ---------------------------------------------------------------- excerpts
def excerpt(data: Any, limit: int = EXCERPT_CHARS) -> str:
    """A short, printable, one-line piece of what a remote sent (bytes or text), marked when cut."""
    if isinstance(data, (bytes, bytearray)):
        data = bytes(data[: limit * 4]).decode("utf-8", "replace")
    text = str(data)
    cut = len(text) > limit
    text = "".join(ch if ch.isprintable() else " " for ch in text[: limit * 2])
    text = " ".join(text.split())
    if len(text) > limit:
        text, cut = text[:limit], True
    return text + (" [...]" if cut else "")


# ---------------------------------------------------------------- allow-list
def _origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL, or URLNotAllowed saying what is wrong with it."""
    if not isinstance(url, str) or not url.strip():
        raise URLNotAllowed(f"{url!r} is not a URL")
    if any(not ch.isprintable() or ch.isspace() for ch in url.strip()):
        raise URLNotAllowed(f"{excerpt(url, 80)!r} contains spaces or control characters")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise URLNotAllowed(f"{excerpt(url, 80)!r} is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise URLNotAllowed(f"{excerpt(url, 80)!r}: only http:// and https:// servers are used")
    if parts.username is not None or parts.password is not None:
        raise URLNotAllowed(f"{excerpt(url, 80)!r}: credentials in a URL are not accepted")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise URLNotAllowed(f"{excerpt(url, 80)!r} names no host")
    return scheme, host, port or (443 if scheme == "https" else 80)


def configured_urls(settings=None) -> list[str]:
    """Every server URL the settings name: what graph inputs may point at."""
    import os

    if settings is None:
        from .settings import load_settings

        settings = load_settings()
    urls = [settings.llm.ollama_host, settings.llm.openai_base_url, *settings.comfyui.servers,
            settings.network.gpt_sovits_url, *settings.network.allowed_urls]
    env_sovits = os.environ.get(GPT_SOVITS_URL_ENV)
    if env_sovits:
        urls.append(env_sovits)
    return [u for u in urls if u]


def url_allowed(url: str, settings=None) -> bool:
    try:
        check_url(url, settings=settings)
        return True
    except URLNotAllowed:
        return False


def check_url(url: str, where: str = "", settings=None) -> str:
    """`url` without a trailing slash when its server is configured; else URLNotAllowed naming `where`."""
    prefix = f"{where}: " if where else ""
    try:
        origin = _origin(url)
    except URLNotAllowed as exc:
        raise URLNotAllowed(prefix + str(exc)) from None
    allowed = configured_urls(settings)
    for candidate in allowed:
        try:
            if _origin(candidate) == origin:
                return url.strip().rstrip("/")
        except URLNotAllowed:
            continue
    shown = ", ".join(sorted({f"{s}://{h}:{p}" for s, h, p in (_safe_origin(u) for u in allowed) if s}))
    raise URLNotAllowed(f"{prefix}{excerpt(url, 80)!r} is not a configured server (allowed: {shown or 'none'}); "
                        "add it to network.allowed_urls in the settings to use it")


def _safe_origin(url: str) -> tuple:
    try:
        return _origin(url)
    except URLNotAllowed:
        return ("", "", 0)


def remote_name_problem(name: str) -> str | None:
    """Why a file name sent to a server (GPT-SoVITS weights, resolved in the server's own folder) may not be
    sent, or None: it must be relative and stay inside that folder. Empty = nothing is sent."""
    from pathlib import PurePosixPath, PureWindowsPath

    if not name:
        return None
    if not isinstance(name, str) or len(name) > 300 or any(not ch.isprintable() for ch in name):
        return f"{excerpt(str(name), 80)!r} is not a file name"
    if name.startswith(("/", "\\", "~")) or any(flavour(name).is_absolute() or flavour(name).drive
                                                  for flavour in (PurePosixPath, PureWindowsPath)):
        return f"{name!r} is an absolute path; name the file relative to the server's folder"
    if any(".." in flavour(name).parts for flavour in (PurePosixPath, PureWindowsPath)):
        return f"{name!r} climbs out of the server's folder ('..')"
    return None


# ---------------------------------------------------------------- resolving and connecting
LOOPBACK_NAMES = ("localhost", "localhost.localdomain")  # and any *.localhost (RFC 6761)


def _ip(host: str):
    """`host` as an ipaddress object when it is an IP literal ("[::1]" brackets already gone), else None."""
    import ipaddress

    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def _internal(address) -> bool:
    """Loopback, private, link-local, unspecified, reserved or multicast: anything but a public unicast host."""
    mapped = getattr(address, "ipv4_mapped", None)
    address = mapped or address
    return not address.is_global or address.is_multicast


def resolve(host: str, port: int, settings=None) -> list[tuple]:
    """getaddrinfo() entries (family, type, proto, canonname, sockaddr) to connect to, looked up once.

    An IP literal is taken as written (the allow-list decided about it). A name must resolve only to
    public addresses, except a loopback name (localhost, *.localhost) which must resolve only to loopback,
    and a name listed in settings network.private_names which may resolve anywhere. Otherwise
    NetError(kind=refused): a name the settings trust must not lead to this machine or its network."""
    host = host.rstrip(".").lower()
    try:
        entries = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise NetError(f"{excerpt(host, 80)}: the name does not resolve ({exc})", "unreachable") from None
    if not entries:
        raise NetError(f"{excerpt(host, 80)}: the name resolves to no address", "unreachable")
    if _ip(host) is not None:
        return entries
    addresses = [_ip(str(entry[4][0])) for entry in entries]
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        bad = [a for a in addresses if a is None or not (getattr(a, "ipv4_mapped", None) or a).is_loopback]
        why = "a loopback name must resolve to loopback addresses only"
    else:
        if settings is None:
            from .settings import load_settings

            settings = load_settings()
        if host in {n.rstrip(".").lower() for n in settings.network.private_names}:
            return entries
        bad = [a for a in addresses if a is None or _internal(a)]
        why = ("it is not listed in network.private_names, so it may not lead to a loopback, private or "
               "link-local address (add it there if that server really is on this machine or network)")
    if bad:
        raise NetError(f"{excerpt(host, 80)} resolves to {', '.join(sorted({str(a) for a in bad}))}: refused; "
                       f"{why}", "refused")
    return entries


def connect(host: str, port: int, timeout: float, settings=None) -> socket.socket:
    """A TCP socket connected to an address of `host` that resolve() checked (tried in order, within
    `timeout` in all). NetError(kind=refused | unreachable | timeout) otherwise."""
    deadline = time.monotonic() + max(0.001, float(timeout))
    last: BaseException | None = None
    for family, kind, proto, _, sockaddr in resolve(host, port, settings):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock = socket.socket(family, kind, proto)
        sock.settimeout(left)
        try:
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    if last is None or isinstance(last, (socket.timeout, TimeoutError)):
        raise NetError(f"{excerpt(host, 80)}:{port}: no connection within {timeout:g} s", "timeout")
    raise NetError(f"{excerpt(host, 80)}:{port}: not reachable ({last.strerror or type(last).__name__})",
                   "unreachable")


# ---------------------------------------------------------------- requests
@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    url: str
    seconds: float = 0.0
    size: int = 0  # bytes received (also when they went to a sink instead of `body`)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The parsed body; NetError(kind=protocol) with a short excerpt when it is not JSON."""
        try:
            return jsonlib.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise NetError(f"{self.url} answered something that is not JSON: {excerpt(self.body)!r}",
                           "protocol") from None


def limits():
    """(connect timeout s, max answer bytes, max download bytes) from the settings."""
    from .settings import load_settings

    net = load_settings().network
    return net.connect_timeout_s, int(net.max_response_mb * MB), int(net.max_download_mb * MB)


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body and its content type."""
    boundary = uuid.uuid4().hex
    out = []
    for name, value in fields.items():
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, data) in files.items():
        safe = filename.replace('"', "_").replace("\r", "_").replace("\n", "_")
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{safe}"\r\n'
                   f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


def request(method: str, url: str, *, timeout: float, json: Any = None, data: bytes | None = None,
            params: dict | None = None, headers: dict | None = None, max_bytes: int | None = None,
            connect_timeout: float | None = None, first_byte_timeout: float | None = None,
            sink: Callable[[bytes], Any] | None = None) -> Response:
    """One HTTP request that ends within `timeout` seconds in all (connect + first byte + body).

    The answer is at most `max_bytes` (settings network.max_response_mb by default); with `sink`
    the body goes there chunk by chunk instead of into memory (downloads). Failures raise NetError
    naming the URL; HTTP error statuses are returned, not raised (callers word them)."""
    default_connect, default_max, _ = limits()
    max_bytes = default_max if max_bytes is None else max_bytes
    started = time.monotonic()
    deadline = started + max(0.001, float(timeout))
    connect_timeout = min(float(connect_timeout or default_connect), float(timeout))
    first_byte_timeout = min(float(first_byte_timeout or timeout), float(timeout))
    scheme, host, port = _origin(url)
    parts = urlsplit(url.strip())
    path = parts.path or "/"
    query = parts.query
    if params:
        query = (query + "&" if query else "") + urlencode(params)
    target = path + (f"?{query}" if query else "")
    body = data
    send_headers = {"Accept-Encoding": "identity", "User-Agent": "animation-studio", "Connection": "close"}
    if json is not None:
        body = jsonlib.dumps(json).encode()
        send_headers["Content-Type"] = "application/json"
    send_headers.update(headers or {})
    what = f"{method} {_safe_url(url)}"

    try:
        sock = connect(host, port, connect_timeout)
    except NetError as exc:
        raise NetError(f"{what}: {exc}", exc.kind) from None

    fired = threading.Event()

    def cut_off():  # the total deadline: unblock whatever read is waiting
        fired.set()
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass

    watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), cut_off)
    watchdog.daemon = True
    watchdog.start()
    conn = None
    try:
        if scheme == "https":
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        conn = http.client.HTTPConnection(host, port, timeout=first_byte_timeout)
        conn.sock = sock
        sock.settimeout(max(0.001, min(first_byte_timeout, deadline - time.monotonic())))
        conn.request(method, target, body=body, headers=send_headers)
        answer = conn.getresponse()
        resp_headers = {k.lower(): v for k, v in answer.getheaders()}
        declared = resp_headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise NetError(f"{what}: the answer is {int(declared) / MB:.1f} MB, more than the "
                           f"{max_bytes / MB:.1f} MB allowed", "too_large")
        sock.settimeout(max(0.001, min(first_byte_timeout, deadline - time.monotonic())))
        chunks, size = [], 0
        while True:
            chunk = answer.read1(CHUNK) if hasattr(answer, "read1") else answer.read(CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise NetError(f"{what}: the answer grew past the {max_bytes / MB:.1f} MB allowed; cut off",
                               "too_large")
            if sink is not None:
                sink(chunk)
            else:
                chunks.append(chunk)
            if fired.is_set():
                break
        if fired.is_set():
            raise socket.timeout
        return Response(answer.status, resp_headers, b"".join(chunks), _safe_url(url),
                        time.monotonic() - started, size)
    except NetError:
        raise
    except (socket.timeout, TimeoutError):
        raise NetError(_timeout_message(what, fired.is_set(), timeout, first_byte_timeout), "timeout") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if fired.is_set():
            raise NetError(_timeout_message(what, True, timeout, first_byte_timeout), "timeout") from None
        raise NetError(f"{what}: the connection failed ({type(exc).__name__}: {excerpt(str(exc), 120)})",
                       "unreachable" if isinstance(exc, ConnectionRefusedError) else "protocol") from None
    finally:
        watchdog.cancel()
        if conn is not None:
            conn.close()
        try:
            sock.close()
        except OSError:
            pass


def _timeout_message(what: str, total: bool, timeout: float, first_byte: float) -> str:
    if total:
        return f"{what}: did not finish within {timeout:g} s (whole-request deadline)"
    return f"{what}: no answer within {first_byte:g} s"


def _safe_url(url: str) -> str:
    """The URL without its query string (queries may carry long or private values)."""
    parts = urlsplit(url.strip())
    return excerpt(f"{parts.scheme}://{parts.netloc}{parts.path}", 160)
