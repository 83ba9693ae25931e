"""The emulator's HTTP server: every platform API and the ``/_emulator/`` control API on one loopback port."""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import random
import select
import socket
import threading
import time
import zlib
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from airflow_provider_browsersessions.hostnames import WILDCARD_ADDRESSES, is_loopback_host
from airflow_provider_browsersessions.testing.emulator import brightdata_api, browserbase_api, cloudflare_api
from airflow_provider_browsersessions.testing.emulator.faults import FaultPlan
from airflow_provider_browsersessions.testing.emulator.responses import Reply
from airflow_provider_browsersessions.testing.emulator.routes import ApiCall, PlatformApi
from airflow_provider_browsersessions.testing.emulator.store import Clock, SessionStore, StoredSession, generate, new_id

if TYPE_CHECKING:
    from collections.abc import Sequence

#: The routing table: every platform API the server serves, tried in order; the first whose ``owns``
#: accepts a request's path serves it. A platform joins with one line here and its own module's ``API``.
PLATFORM_APIS: tuple[PlatformApi, ...] = (brightdata_api.API, cloudflare_api.API, browserbase_api.API)
#: Sessions one seeding may generate (each platform): enough for any benchmark, not enough to eat the memory.
MAX_SEED_COUNT = 100_000
#: Bytes of request body read at most, on any route; a larger ``Content-Length`` is refused before reading.
MAX_REQUEST_BODY = 64 * 1024 * 1024


def _declared_settings(apis: Sequence[PlatformApi]) -> dict[str, Any]:
    """Every platform's settings with their defaults; a name two platforms declare is an error."""
    declared: dict[str, Any] = {}
    for api in apis:
        shared = sorted(declared.keys() & api.settings.keys())
        if shared:
            raise ValueError(f"platform {api.name!r} declares settings another platform has: {', '.join(shared)}")
        declared.update(api.settings)
    return declared


class Emulator:
    """
    A faithful emulator of Bright Data's Browser Sessions API and Cloudflare's devtools session API.

    Python methods and the HTTP control API (``/_emulator/...``) share one implementation. Sessions
    follow an emulator clock (``speed``, ``advance``); faults can be scripted, random or a platform's
    lockout; every API request is logged (never a credential).

    Each platform adds its settings as keyword arguments (declared by its API, ``PlatformApi.settings``),
    readable as attributes of the same names: ``brightdata_api_key``, ``cloudflare_api_token``,
    ``cloudflare_email``, ``cloudflare_global_key``, ``cloudflare_account_id`` (the only credentials and
    account it accepts, by default the ``DEFAULT_*`` constants) and ``cloudflare_retention`` (emulator
    seconds a closed Cloudflare session stays readable, default 3600).

    :param host: Loopback address to bind.
    :param port: Port (0: a free one).
    :param seed: Seed of the data generator.
    :param sessions: Sessions to seed on each platform at start.
    :param speed: Emulator seconds per real second (0 freezes the clock).
    :param apis: The platform APIs it serves (default ``PLATFORM_APIS``), tried in order.
    :param settings: Platform settings, by name (see above).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        sessions: int = 0,
        speed: float = 1.0,
        apis: Sequence[PlatformApi] = PLATFORM_APIS,
        **settings: Any,
    ) -> None:
        self.host, self._port = host, port
        self.seed, self.initial_sessions = seed, sessions
        self.apis = {api.name: api for api in apis}
        if len(self.apis) != len(apis):
            raise ValueError(f"each platform API needs its own name, got {[api.name for api in apis]}")
        declared = _declared_settings(apis)
        unknown = sorted(settings.keys() - declared.keys())
        if unknown:
            raise TypeError(
                f"Emulator() got unexpected keyword arguments {', '.join(unknown)}; "
                f"its platforms' settings are {', '.join(declared)}"
            )
        self.settings: dict[str, Any] = {**declared, **settings}
        self._default_options = dict.fromkeys((name for api in apis for name in api.options), False)
        self.clock = Clock(speed)
        self.store = SessionStore(self.clock, self.apis)
        self.faults = FaultPlan({api.name: api.rate_budget for api in apis if api.rate_budget is not None})
        self.options: dict[str, bool] = dict(self._default_options)
        self._log: list[dict[str, Any]] = []
        self._log_lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __getattr__(self, name: str) -> Any:
        # Only called for names not found otherwise: a platform's settings (``cloudflare_account_id``) and
        # its connection's base URL (``cloudflare_base_url``) read as attributes.
        settings = self.__dict__.get("settings", {})
        if name in settings:
            return settings[name]
        platform = name.removesuffix("_base_url")
        if platform != name and platform in self.__dict__.get("apis", {}):
            return self.base_url(platform)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> Emulator:
        """Bind, seed and serve in a background thread."""
        if self._server is not None:
            return self
        server = ThreadingHTTPServer((self.host, self._port), _Handler, bind_and_activate=False)
        server.daemon_threads = True
        server.request_queue_size = 1024
        server.allow_reuse_address = True
        try:
            server.server_bind()
            server.server_activate()
        except OSError:
            server.server_close()  # a taken port raises here: free the socket rather than leak it
            raise
        server.emulator = self  # type: ignore[attr-defined]
        self._server = server
        if self.initial_sessions:
            self._seed("both", count=self.initial_sessions, seed=self.seed, showcase=True)
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port."""
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://host:port``; bound to every interface (``0.0.0.0``), the loopback address clients use here."""
        host = "127.0.0.1" if self.host in WILDCARD_ADDRESSES else self.host
        return f"http://{host}:{self.port}"

    @property
    def exposed(self) -> bool:
        """Whether it listens beyond loopback: its plain HTTP and unauthenticated control API reach the network."""
        return not is_loopback_host(self.host)

    def base_url(self, platform: str) -> str:
        """Base URL for a platform's connection Host (also ``<platform>_base_url``, e.g. ``cloudflare_base_url``)."""
        return f"{self.url}{self._api(platform).base_path}"

    def connection_env(self, **conn_ids: str) -> dict[str, str]:
        """
        ``AIRFLOW_CONN_*`` variables (JSON form) wiring each platform's connection type to this emulator.

        :param conn_ids: ``<platform>_conn_id=`` (``brightdata_conn_id``, ``cloudflare_conn_id``) for a
            connection id other than the platform's default.
        """
        unknown = sorted(conn_ids.keys() - {f"{name}_conn_id" for name in self.apis})
        if unknown:
            raise TypeError(f"connection_env() takes <platform>_conn_id for {', '.join(self.apis)}, not {unknown}")
        env: dict[str, str] = {}
        for name, api in self.apis.items():
            conn_id = conn_ids.get(f"{name}_conn_id", api.default_conn_id)
            connection = api.connection(self.base_url(name), self.settings)
            if not is_loopback_host(urlsplit(self.url).hostname or ""):
                # The hooks refuse clear text to a host that is not loopback unless told: these values must work.
                connection["extra"] = {**connection.get("extra", {}), "allow_insecure_http": True}
            env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(connection)
        return env

    # -- clock -------------------------------------------------------------------------------------

    def now(self) -> float:
        """Emulator time (epoch seconds)."""
        return self.clock.now()

    def advance(self, seconds: float) -> None:
        """Jump the clock forward."""
        self.clock.advance(seconds)
        self.store.changed()

    def set_speed(self, speed: float) -> None:
        """Emulator seconds per real second from now on."""
        self.clock.set_speed(speed)

    # -- data --------------------------------------------------------------------------------------

    def seed_sessions(self, *, platform: str = "both", count: int, seed: int | None = None) -> list[str]:
        """Add ``count`` generated sessions on a platform (or on each with ``"both"``); return their ids."""
        return self._seed(platform, count=count, seed=seed, showcase=False)

    def _seed(self, platform: str, *, count: int, seed: int | None, showcase: bool) -> list[str]:
        """``seed_sessions``; with ``showcase``, reshaped as the starting data set (``PlatformApi.showcase``)."""
        apis = list(self.apis.values()) if platform == "both" else [self._api(platform)]
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_SEED_COUNT:
            raise ValueError(f"'count' is a whole number from 0 to {MAX_SEED_COUNT:,} (the cap), got {count!r}")
        ids: list[str] = []
        for index, api in enumerate(apis):
            made = generate(
                api.name,
                count=int(count),
                seed=None if seed is None else seed + index,
                now=self.now(),
                new_fields=api.new_fields,
                history=api.history,
                max_running=api.max_running,
            )
            if showcase and api.showcase is not None:
                # Its own RNG (a str seed hashes the same in every process): the generated set stays the seed's.
                api.showcase(made, random.Random(f"showcase {seed} {index}"), self.now())
            with self.store.lock:
                for session in made:
                    self.store.sessions[api.name][session.session_id] = session
                self.store.changed()
            ids += [s.session_id for s in made]
        return ids

    def add_session(
        self,
        platform: str,
        *,
        session_id: str | None = None,
        duration: float | None = None,
        outcome: str = "finished",
        started_at: float | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Start a session (now, or at ``started_at``) that ends with ``outcome`` after ``duration``."""
        api = self._api(platform)
        if outcome not in ("finished", "failed"):
            raise ValueError("outcome must be finished or failed")
        rng = random.Random()
        planned = api.new_fields(rng, outcome)
        planned.update(fields)
        start = self.now() if started_at is None else float(started_at)
        session = StoredSession(platform, session_id or new_id(rng), start, duration, outcome, planned)
        self.store.add(session)
        return self._record(session)

    def end_session(
        self, platform: str, session_id: str, *, status: str = "finished", **details: Any
    ) -> dict[str, Any]:
        """
        End a session now.

        :param details: The platform's own: ``error={"code", "message"}`` on Bright Data, ``close_reason=``
            on Cloudflare.
        """
        api = self._api(platform)
        if status not in ("finished", "failed"):
            raise ValueError("status must be finished or failed")
        # None is every detail's default: a generic client may send each platform's names, unused ones null.
        details = {name: value for name, value in details.items() if value is not None}
        try:
            inspect.signature(api.ended_fields).bind(status, **details)
        except TypeError as err:
            raise TypeError(f"end_session on {platform}: {err}") from None
        fields = api.ended_fields(status, **details)
        if self.store.get(platform, session_id) is None:
            raise KeyError(f"no {platform} session {session_id!r}")
        return self._record(self.store.end(platform, session_id, status, self.now(), fields))

    def _api(self, platform: str) -> PlatformApi:
        api = self.apis.get(platform)
        if api is None:
            raise ValueError(f"platform must be one of {', '.join(self.apis)}, not {platform!r}")
        return api

    def _record(self, session: StoredSession) -> dict[str, Any]:
        server_url = self.url if self._server else "http://127.0.0.1"
        return self.apis[session.platform].record(session, self.now(), server_url)

    def get_record(self, platform: str, session_id: str) -> dict[str, Any] | None:
        """The wire record as the platform's GET would return it now (ignoring retention)."""
        session = self.store.get(self._api(platform).name, session_id)
        return None if session is None else self._record(session)

    def sessions(self, platform: str) -> list[dict[str, Any]]:
        """Every stored wire record of a platform, now."""
        with self.store.lock:
            stored = list(self.store.sessions[self._api(platform).name].values())
        return [self._record(s) for s in stored]

    def set_options(self, **options: bool | None) -> None:
        """
        Switch a platform's optional body shapes (``PlatformApi.options``), each ``True`` or ``False``
        (``None`` leaves it): Cloudflare's ``cloudflare_envelope`` and ``cloudflare_null_for_missing``.
        """
        unknown = sorted(options.keys() - self._default_options.keys())
        if unknown:
            raise TypeError(f"set_options() takes {', '.join(self._default_options) or 'no options'}, not {unknown}")
        self.options.update({name: bool(value) for name, value in options.items() if value is not None})

    def reset(self) -> None:
        """Forget sessions, faults, options and the log."""
        self.store.clear()
        self.faults.clear()
        self.options.update(self._default_options)
        self.clear_log()

    # -- faults ------------------------------------------------------------------------------------

    def script_faults(
        self,
        faults: list[dict[str, Any]],
        *,
        platform: str | None = None,
        method: str | None = None,
        path_contains: str | None = None,
    ) -> None:
        """Queue faults for matching API requests, consumed in order."""
        self.faults.script(faults, platform=platform, method=method, path_contains=path_contains)
        for fault in faults:
            if fault["kind"] == "gzip_bomb":
                _gzip_bomb(int(fault["size"]))  # built now (seconds for a GiB), so the answer itself is prompt

    def set_random_faults(
        self,
        *,
        rate: float,
        kinds: list[str],
        seed: int,
        retry_after: float = 0.05,
        latency: float = 0.05,
        platform: str | None = None,
    ) -> None:
        """Fault each API request with probability ``rate`` (seeded)."""
        self.faults.set_random(
            rate=rate, kinds=kinds, seed=seed, retry_after=retry_after, latency=latency, platform=platform
        )

    def set_lockout(
        self, *, budget: int | None, window: float = 300.0, lockout: float | None = None, platform: str | None = None
    ) -> None:
        """
        A platform's rate budget (``PlatformApi.rate_budget``; Cloudflare's is on by default: 1,200 per 300 s):
        past ``budget`` requests in ``window`` real seconds, every call is a 429 for ``lockout`` seconds
        (default: ``window``). Every answer of that platform carries ``Ratelimit``/``Ratelimit-Policy`` for it;
        ``budget=None`` turns budget and headers off. ``platform`` names one; None sets every rate-limited one.
        """
        self.faults.set_lockout(budget=budget, window=window, lockout=lockout, platform=platform)

    def clear_faults(self) -> None:
        """No faults."""
        self.faults.clear()

    # -- observations ------------------------------------------------------------------------------

    def log_request(self, entry: dict[str, Any]) -> None:
        """Append to the request log (the handler calls this; never with credentials)."""
        with self._log_lock:
            entry["seq"] = len(self._log) + 1
            self._log.append(entry)

    def request_log(self, *, platform: str | None = None) -> list[dict[str, Any]]:
        """API requests so far, oldest first."""
        with self._log_lock:
            return [dict(e) for e in self._log if platform is None or e["platform"] == platform]

    def request_count(
        self, *, platform: str | None = None, method: str | None = None, path_contains: str | None = None
    ) -> int:
        """How many API requests matched."""
        return sum(
            1
            for e in self.request_log(platform=platform)
            if (method is None or e["method"] == method.upper())
            and (path_contains is None or path_contains in e["path"])
        )

    def clear_log(self) -> None:
        """Forget logged requests."""
        with self._log_lock:
            self._log.clear()


def _control(emulator: Emulator, method: str, segments: list[str], query: dict[str, list[str]], body: Any) -> Reply:
    """``/_emulator/...``: the same operations as the Python methods, as JSON over HTTP."""
    route = "/".join(segments[1:])
    args = body if isinstance(body, dict) else {}
    if method == "GET" and route == "health":
        return Reply(200, {"ok": True})
    if route == "clock":
        if method == "POST":
            if "advance" in args:
                emulator.advance(float(args["advance"]))
            if "speed" in args:
                emulator.set_speed(float(args["speed"]))
        return Reply(200, {"now": emulator.now(), "speed": emulator.clock.speed})
    if method == "POST" and route == "seed":
        return Reply(200, {"ids": emulator.seed_sessions(**args)})
    if route.startswith("sessions/"):
        parts = segments[2:]
        if method == "GET" and len(parts) == 1:
            return Reply(200, emulator.sessions(parts[0]))
        if method == "POST" and len(parts) == 1:
            return Reply(200, emulator.add_session(parts[0], **args))
        if method == "POST" and len(parts) == 3 and parts[2] == "end":
            return Reply(200, emulator.end_session(parts[0], parts[1], **args))
    if method == "POST" and route == "options":
        emulator.set_options(**args)
        return Reply(200, dict(emulator.options))
    if method == "POST" and route == "faults/script":
        faults = args.pop("faults", [])
        emulator.script_faults(faults, **args)
        return Reply(200, {"ok": True})
    if method == "POST" and route == "faults/random":
        emulator.set_random_faults(**args)
        return Reply(200, {"ok": True})
    if method == "POST" and route == "faults/lockout":
        emulator.set_lockout(**args)
        return Reply(200, {"ok": True})
    if method == "DELETE" and route == "faults":
        emulator.clear_faults()
        return Reply(200, {"ok": True})
    if route == "requests":
        if method == "DELETE":
            emulator.clear_log()
            return Reply(200, {"ok": True})
        platform = query.get("platform", [""])[-1] or None
        return Reply(200, emulator.request_log(platform=platform))
    if method == "POST" and route == "reset":
        emulator.reset()
        return Reply(200, {"ok": True})
    return Reply(404, {"error": f"no control route {method} /_emulator/{route}"})


def _control_refusal(headers: Any) -> str | None:
    """
    Why a control request is refused, or None: it must be addressed to a loopback host and not come from
    another site's page. A web page can reach a loopback port too; a DNS-rebinding page sends its own host
    name as ``Host``, a cross-site form or fetch its origin as ``Origin``.
    """
    host = str(headers.get("Host") or "")
    try:
        name = urlsplit(f"//{host}").hostname
    except ValueError:
        name = None
    # A fully qualified name's trailing dot ("localhost.") names the same host.
    if not name or not is_loopback_host(name.rstrip(".")):
        return (
            f"the control API answers only requests addressed to a loopback host (Host 127.0.0.1, localhost or "
            f"[::1]), not Host {host[:100]!r}"
        )
    origin = headers.get("Origin")
    if origin is not None and origin.rstrip("/").lower() != f"http://{host}".lower():
        return f"cross-site request refused: Origin {str(origin)[:100]!r} is not this emulator (http://{host})"
    if str(headers.get("Sec-Fetch-Site") or "").lower() == "cross-site":
        return "cross-site request refused (Sec-Fetch-Site: cross-site)"
    return None


def _body_length(value: str | None) -> int | None:
    """A ``Content-Length`` as a number of bytes (0 when absent), or None when it is not a whole number >= 0."""
    if value is None:
        return 0
    text = value.strip()
    return int(text) if text.isdigit() and text.isascii() else None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "browsersessions-emulator"
    # Headers and body are separate writes: with Nagle on, a keep-alive client's delayed ACK adds ~40 ms to
    # every response. Real API front ends set TCP_NODELAY too.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        return

    def handle(self) -> None:
        # A client that gave up on a stalled or trickled answer resets the connection: not the server's error.
        with contextlib.suppress(ConnectionError):
            super().handle()

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    @property
    def emulator(self) -> Emulator:
        return self.server.emulator  # type: ignore[attr-defined,no-any-return]

    def _dispatch(self, method: str) -> None:
        raw_path, _, raw_query = self.path.partition("?")
        # Split the RAW path first: an encoded "/" (%2F) stays inside its segment, ".." is never resolved.
        segments = [unquote(part) for part in raw_path.strip("/").split("/")]
        query = parse_qs(raw_query, keep_blank_values=True)
        length = _body_length(self.headers.get("Content-Length"))
        if length is None or length > MAX_REQUEST_BODY:
            # The body's end is unknown (or too far): answer, and close rather than read on.
            self.close_connection = True
            sent = str(self.headers.get("Content-Length"))[:40]
            problem = f"Content-Length must be a whole number of bytes from 0 to {MAX_REQUEST_BODY:,}, got {sent!r}"
            self._write(Reply(400 if length is None else 413, {"error": problem}))
            return
        if segments[0] == "_emulator" and (refusal := _control_refusal(self.headers)) is not None:
            self.close_connection = True  # its body is not read
            self._write(Reply(403, {"error": refusal}))
            return
        payload = self.rfile.read(length) if length else b""
        if segments[0] == "_emulator":
            try:
                body = json.loads(payload) if payload else {}
                reply = _control(self.emulator, method, segments, query, body)
            except (ValueError, TypeError, KeyError) as err:
                reply = Reply(400, {"error": str(err)})
            self._write(reply)
            return
        api = next((api for api in self.emulator.apis.values() if api.owns(segments)), None)
        if api is None:
            self._write(Reply(404, {"error": "Not found"}))
            return
        platform = api.name
        fault = self.emulator.faults.decide(platform, method, raw_path)
        call = ApiCall(
            method=method, segments=segments, query=query, headers=self.headers, raw_path=raw_path, body=payload
        )
        reply, cut = self._reply(api, call, fault)
        reply.headers = {**self.emulator.faults.ratelimit_headers(platform), **reply.headers}
        stalled = fault is not None and fault["kind"] == "stall_headers"
        # Applied, then the connection drops before any answer: what a client sees when a proxy loses it.
        dropped = fault is not None and fault["kind"] == "drop_after_apply" and fault.get("status") is None
        body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        # Logged before the reply is written: a client that got its answer finds its request in the log.
        self.emulator.log_request(
            {
                "platform": platform,
                "method": method,
                "path": raw_path,
                "query": query,
                "raw_query": raw_query,
                "status": None if stalled or dropped else reply.status,
                "fault": None if fault is None else ("lockout" if fault.get("lockout") else fault["kind"]),
                "bytes": len(body) // 2 if cut else len(body),
                "time": time.time(),
            }
        )
        if stalled:
            self._hold(float(fault.get("seconds", 3600)) if fault else 0.0)
            self.close_connection = True
            return
        if dropped:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault is not None and fault["kind"] == "trickle":
            self._trickle(Reply(reply.status, body, reply.headers), fault)
            return
        self._write(Reply(reply.status, body, reply.headers), cut=cut)

    def _hold(self, seconds: float) -> None:
        """Answer nothing for ``seconds``, or until the client hangs up (a stalled server or proxy)."""
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            readable, _, _ = select.select([self.connection], [], [], min(left, 0.2))
            if readable:
                try:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        return  # the client gave up
                except OSError:
                    return
                time.sleep(min(left, 0.2))  # a pipelined request waits its turn; keep holding

    def _trickle(self, reply: Reply, fault: dict[str, Any]) -> None:
        """Send the headers at once, then the body at ``bytes_per_second`` until done or the client hangs up."""
        body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        size = int(fault.get("size") or len(body))
        body = body + b" " * max(0, size - len(body))  # JSON whitespace: a valid body, only slow
        rate = float(fault.get("bytes_per_second", 1))
        step = max(1, int(rate / 10))
        self._send_head(reply, len(body))
        self.close_connection = True
        try:
            for start in range(0, len(body), step):
                self.wfile.write(body[start : start + step])
                self.wfile.flush()
                time.sleep(step / rate)
        except OSError:
            return  # the client gave up

    def _reply(self, api: PlatformApi, call: ApiCall, fault: dict[str, Any] | None) -> tuple[Reply, bool]:
        kind = None if fault is None else fault["kind"]
        network = _network_reply(api, fault)
        if network is not None:
            return network, False
        if fault is not None and kind == "429":
            return api.rate_limited(_number(fault.get("retry_after", 1))), False
        if kind == "repeat_page" and api.is_list(call):
            return api.repeated_page(self.emulator, call), False
        if kind in ("500", "503"):
            return _server_error(api, int(str(kind))), False
        if fault is not None and kind == "drop_after_apply":
            api.handle(self.emulator, call)  # it takes effect: only the answer is lost
            # Without a status the handler hangs up instead of writing this (see _dispatch).
            return _server_error(api, int(fault.get("status") or 502)), False
        if fault is not None and kind == "body":
            # Any status and raw body: wrong types, missing fields, null lists, huge or truncated bodies.
            headers = {"Content-Type": str(fault.get("content_type", "application/json"))}
            return Reply(int(fault.get("status", 200)), str(fault["body"]).encode(), headers), False
        if kind == "html_error":
            page = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
            return Reply(502, page, {"Content-Type": "text/html"}), False
        if fault is not None and kind == "latency":
            time.sleep(float(fault.get("seconds", 0.05)))
        reply = api.handle(self.emulator, call)
        if kind == "malformed_json":
            body = json.dumps(reply.body).encode()
            return Reply(200, body[: max(1, len(body) // 2)]), False
        return reply, kind == "close_mid_body"

    def _send_head(self, reply: Reply, length: int) -> None:
        """Status line and headers of an answer whose body has ``length`` bytes."""
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.headers.pop("Content-Type", "application/json"))
        self.send_header("Content-Length", str(length))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _write(self, reply: Reply, *, cut: bool = False) -> None:
        body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        self._send_head(reply, len(body))
        if cut:
            # Promise the whole body, send half, hang up: what a dropped connection looks like to a client.
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)


def _server_error(api: PlatformApi, status: int) -> Reply:
    """A 5xx in the API's own body when it has one, else the generic ``{"error": ...}``."""
    own = api.server_error(status)
    if own is not None:
        return own
    # No body of the API's own for this status (Bright Data; Cloudflare's 503): the {"error": ...} fallback.
    message = {500: "Internal server error", 503: "Service unavailable"}.get(status) or HTTPStatus(status).phrase
    return Reply(status, {"error": message})


def _network_reply(api: PlatformApi, fault: dict[str, Any] | None) -> Reply | None:
    """The hostile-network faults answered without the API: a raw Retry-After, a redirect, a gzip bomb."""
    kind = None if fault is None else fault["kind"]
    if fault is None or kind not in ("429_raw", "redirect", "gzip_bomb"):
        return None
    if kind == "429_raw":
        reply = api.raw_rate_limited()
        reply.headers["Retry-After"] = str(fault["retry_after"])
        return reply
    if kind == "redirect":
        return Reply(int(fault.get("status", 302)), b"", {"Location": str(fault["location"])})
    return Reply(200, _gzip_bomb(int(fault["size"])), {"Content-Encoding": "gzip"})


@functools.lru_cache(maxsize=4)
def _gzip_bomb(size: int) -> bytes:
    # Spaces compress about 1000:1: 1 GiB of them is a ~1 MB body, built a MiB at a time (never whole).
    packer = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b" " * (1024 * 1024)
    parts = []
    for start in range(0, size, len(block)):
        parts.append(packer.compress(block[: min(len(block), size - start)]))
    parts.append(packer.flush())
    return b"".join(parts)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{float(value):.2f}"
