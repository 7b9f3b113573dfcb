"""
The I/O part of bfsync's REST calls: one ``requests.Session`` per service, a small pool of
threads for ``wait_for_response=False``, errors translated into bfsync's exceptions.

What is sent and how an answer is read is in ``rest.py`` (pure); this module only moves
bytes, reads the clock and waits.

- Blocking calls run in the caller's thread. Futures run on a pool of at most
  :data:`POOL_SIZE` threads named ``bfsync-rest-N``, started on first use; an idle thread
  ends after :data:`IDLE_SECONDS`, and ``close()`` ends them all (bounded).
- Timeouts: ``connection_timeout`` to connect, ``request_timeout`` per read.
- Reads are sent again once after a connection error (signed anew). Calls that change state
  are never sent again: once sent, a timeout or a cut connection raises
  ``OrderStatusUnknownError`` (``OrderTimeoutError`` / ``OrderConnectionLostError``).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import re
import socket
import threading
import time
import weakref
from collections.abc import Mapping
from concurrent.futures import Future, InvalidStateError
from typing import TYPE_CHECKING, Any, Callable, Optional

from ._dispatch import DispatchedFuture, Dispatcher
from .config import Config
from .exceptions import (
    ConnectionError,
    ConnectionLostError,
    OrderConnectionLostError,
    OrderTimeoutError,
    RequestTimeoutError,
)
from .protocol import NONE, SIGNED
from .rest import (
    RestCall,
    decode_public_get,
    decode_response,
    encode_params,
    signed_payload,
    weight_of_call,
)

if TYPE_CHECKING:
    import requests

    from .limits import RateLimiter
    from .signing import Signer

__all__ = ["IDLE_SECONDS", "POOL_SIZE", "RestTransport", "get_public"]

log = logging.getLogger("bfsync.rest")

POOL_SIZE = 4
IDLE_SECONDS = 30.0
_CLOSE_WAIT = 2.0
_STOP = object()


class _Pool:
    """At most ``size`` daemon threads running queued callables; ``close()`` joins them."""

    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._started = 0

    def submit(self, fn: Callable[[], None]) -> None:
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            if self._idle == 0 and len(self._threads) < self._size:
                self._started += 1
                thread = threading.Thread(
                    target=self._run, name=f"{self._name}-{self._started}", daemon=True
                )
                self._threads.append(thread)
                self._idle += 1
                thread.start()
            self._queue.put(fn)

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():  # idle too long: end (submit() starts another)
                        self._idle -= 1
                        current = threading.current_thread()
                        self._threads = [t for t in self._threads if t is not current]
                        return
                continue
            if item is _STOP:
                with self._lock:
                    self._idle -= 1
                return
            with self._lock:
                self._idle -= 1
            try:
                item()
            except Exception:  # the callables settle their own futures; this is a bug
                log.exception("REST task failed")
            with self._lock:
                self._idle += 1

    def stop(self) -> None:
        """Drop what was never run and tell every thread to end (does not wait)."""
        with self._lock:
            threads = list(self._threads)
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        for _ in threads:
            self._queue.put(_STOP)

    def join(self, timeout: float) -> None:
        """Wait at most ``timeout`` seconds for the threads to end (never for this one)."""
        with self._lock:
            threads, self._threads = self._threads, []
        deadline = time.monotonic() + timeout
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))


class RestTransport:
    """
    Sends REST calls for one service. Thread-safe; ``close()`` is idempotent.

    Args:
        config: the service's config (URLs, timeouts, ``recv_window``).
        signer: the service's signer.
        api_key: sent as ``X-MBX-APIKEY`` on signed and user-stream calls.
        base_url: ``rest_base_url(config)``.
        clock_offset_ms: returns the server's clock minus ours, in ms.
        limiter: the service's client-side throttle, or ``None``.
        dispatcher: where done-callbacks of the futures run.
    """

    def __init__(
        self,
        config: Config,
        signer: Signer,
        api_key: str,
        base_url: str,
        clock_offset_ms: Callable[[], float],
        limiter: Optional[RateLimiter],
        dispatcher: Dispatcher,
    ) -> None:
        import requests

        self._config = config
        self._signer = signer
        self._api_key = api_key
        self._base_url = base_url
        self._offset = clock_offset_ms
        self._limiter = limiter
        self._dispatcher = dispatcher
        self._in_flight: weakref.WeakSet[Any] = weakref.WeakSet()  # urllib3 connections
        self._session: requests.Session = requests.Session()
        self._session.headers["User-Agent"] = "bfsync"
        adapter = _tracking_adapter(self._in_flight, threading.Lock())
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._pool: Optional[_Pool] = None
        self._lock = threading.Lock()
        self._closed = False
        self._pending: set[Future[Any]] = set()

    def __repr__(self) -> str:
        return f"<RestTransport {self._base_url} {'closed' if self._closed else 'open'}>"

    @property
    def closed(self) -> bool:
        return self._closed

    def request(
        self,
        call: RestCall,
        params: Mapping[str, Any],
        client_order_id: Optional[str] = None,
    ) -> dict[str, Any]:
        """
        Send ``call`` and return the frame-like reply (blocking, in this thread).

        Raises:
            ConnectionError: closed, or the server could not be reached (nothing was done).
            RequestError: the server refused (see ``rest.decode_response``); a timeout is a
                ``RequestTimeoutError`` (``OrderTimeoutError`` for calls that change state).
            OrderStatusUnknownError: a call that changes state may or may not have been done.
        """
        import requests

        if self._closed:
            raise ConnectionError("the service is closed; call connect() first")
        symbol = params.get("symbol")
        symbol = symbol if isinstance(symbol, str) else None
        attempts = 2 if call.is_read else 1
        for attempt in range(attempts):
            self._throttle(call, params)  # each attempt counts
            try:
                return self._send(call, params, client_order_id, symbol)
            except requests.ConnectTimeout as exc:  # also a ConnectionError: nothing was sent
                raise self._timeout_error(call, exc, client_order_id, symbol) from None
            except requests.ConnectionError as exc:
                sent = not _before_sending(exc)
                if attempt + 1 < attempts and not self._closed:
                    log.info("%s: connection error, sending once more: %s", call.label, exc)
                    continue
                raise self._connection_error(call, exc, sent, client_order_id, symbol) from None
            except requests.Timeout as exc:
                raise self._timeout_error(call, exc, client_order_id, symbol) from None
            except requests.RequestException as exc:
                raise ConnectionError(f"{call.label} failed: {type(exc).__name__}: {exc}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        """Run ``fn`` on the pool; a ``Future`` of its result (callbacks on the dispatcher)."""
        future: DispatchedFuture[Any] = DispatchedFuture()
        future._dispatcher = self._dispatcher

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                self._forget(future)
                return
            try:
                result = fn()
            except BaseException as exc:
                with contextlib.suppress(InvalidStateError):  # failed by close() meanwhile
                    future.set_exception(exc)
            else:
                with contextlib.suppress(InvalidStateError):
                    future.set_result(result)
            self._forget(future)

        with self._lock:
            if self._closed:
                raise ConnectionError("the service is closed; call connect() first")
            if self._pool is None:
                self._pool = _Pool(POOL_SIZE, "bfsync-rest")
            self._pending.add(future)
            self._pool.submit(run)
        return future

    def close(self) -> None:
        """Stop the pool (at most ~2 s), fail what never ran, close the session."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pool, self._pool = self._pool, None
        with self._lock:
            pending = list(self._pending)
        if pool is not None:
            pool.stop()
        for connection in list(self._in_flight):  # a blocked read returns at once
            sock = getattr(connection, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self._session.close()
        if pool is not None:
            pool.join(_CLOSE_WAIT)
        for future in pending:
            with contextlib.suppress(InvalidStateError):
                future.set_exception(
                    ConnectionError("the service was closed before this REST call ended")
                )

    # Private methods

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _throttle(self, call: RestCall, params: Mapping[str, Any]) -> None:
        limiter = self._limiter
        if limiter is None:
            return
        now = time.monotonic()
        delay = limiter.reserve(weight_of_call(call, params), int(call.is_order), now)
        if delay > self._config.request_timeout:
            raise RequestTimeoutError(
                f"{call.label}: held by the client-side rate limit for {delay:.1f} s, more "
                f"than request_timeout ({self._config.request_timeout} s); not sent"
            )
        if delay > 0:
            time.sleep(delay)

    def _send(
        self,
        call: RestCall,
        params: Mapping[str, Any],
        client_order_id: Optional[str],
        symbol: Optional[str],
    ) -> dict[str, Any]:
        headers: dict[str, str] = {}
        if call.security != NONE:
            headers["X-MBX-APIKEY"] = self._api_key
        if call.security == SIGNED:
            timestamp = int(time.time() * 1000 + self._offset())
            text = signed_payload(params, timestamp, self._config.recv_window, self._signer.sign)
        else:
            text = encode_params(params)
        url = self._base_url + call.path
        data: Optional[str] = None
        if call.verb in ("POST", "PUT") and text:
            data = text
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif text:
            url = f"{url}?{text}"
        timeout = (self._config.connection_timeout, self._config.request_timeout)
        response = self._session.request(
            call.verb, url, data=data, headers=headers, timeout=timeout, allow_redirects=False
        )
        received = time.monotonic()
        try:
            body = response.text
        finally:
            response.close()
        reply = decode_response(
            call,
            response.status_code,
            response.headers,
            body,
            int(time.time() * 1000),
            client_order_id,
            symbol,
        )
        limits = reply.get("rateLimits")
        if self._limiter is not None and limits:
            self._limiter.observe(limits, received)
        return reply

    def _connection_error(
        self,
        call: RestCall,
        exc: BaseException,
        sent: bool,
        client_order_id: Optional[str],
        symbol: Optional[str],
    ) -> Exception:
        detail = _short(exc)
        if not sent:
            return ConnectionError(f"{call.label}: could not reach {self._base_url}: {detail}")
        if call.is_read:
            return ConnectionLostError(f"{call.label}: the connection failed: {detail}")
        return OrderConnectionLostError(
            f"{call.label}: the connection failed after the request was sent ({detail}); "
            "it may or may not have been done"
            + (f" (client order id {client_order_id!r})" if client_order_id else ""),
            client_order_id=client_order_id,
            method=call.label,
            symbol=symbol,
        )

    def _timeout_error(
        self,
        call: RestCall,
        exc: BaseException,
        client_order_id: Optional[str],
        symbol: Optional[str],
    ) -> Exception:
        import requests

        timeout = self._config.request_timeout
        if isinstance(exc, requests.ConnectTimeout):
            return ConnectionError(
                f"{call.label}: could not connect to {self._base_url} within "
                f"{self._config.connection_timeout} s; nothing was sent"
            )
        if call.is_read:
            return RequestTimeoutError(f"{call.label}: no answer within {timeout} s")
        return OrderTimeoutError(
            f"{call.label}: no answer within {timeout} s; it may or may not have been done"
            + (f" (client order id {client_order_id!r})" if client_order_id else ""),
            client_order_id=client_order_id,
            method=call.label,
            symbol=symbol,
        )


def get_public(
    url: str,
    params: Optional[Mapping[str, Any]] = None,
    *,
    timeout: float,
    session: Optional[requests.Session] = None,
) -> dict[str, Any]:
    """
    ``GET url`` (unsigned, no key) in this thread: the answer's JSON object.

    ``timeout`` (seconds) bounds connecting and each read (``requests``' timeout); ``session``
    is reused when given, else ``requests.get``. Error messages name ``url`` without the
    query.

    Raises:
        RateLimitError, RequestError: see :func:`bfsync.rest.decode_public_get`.
        RequestTimeoutError: no answer within ``timeout`` once connected.
        ConnectionError: the request could not be sent or the answer was cut (network
            failure, DNS, refused, connect timeout, bad URL, ...).
    """
    import requests

    try:
        getter = requests.get if session is None else session.get
        response = getter(url, params=params, timeout=timeout)
        status, headers, text = response.status_code, response.headers, response.text
    except requests.ConnectionError as exc:  # also ConnectTimeout
        raise ConnectionError(f"GET {url} failed: {exc}") from None
    except requests.Timeout as exc:
        raise RequestTimeoutError(f"GET {url}: no answer within {timeout} s ({exc})") from None
    except requests.RequestException as exc:
        raise ConnectionError(f"GET {url} failed: {type(exc).__name__}: {exc}") from None
    return decode_public_get(url, status, headers, text)


def _tracking_adapter(in_flight: weakref.WeakSet[Any], lock: threading.Lock) -> Any:
    """A ``requests`` adapter whose connections are in ``in_flight`` while in use."""
    from requests.adapters import HTTPAdapter
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class _Tracking:
        def _get_conn(self, timeout: Optional[float] = None) -> Any:
            connection = super()._get_conn(timeout)  # type: ignore[misc]
            with lock:
                in_flight.add(connection)
            return connection

        def _put_conn(self, connection: Any) -> None:
            if connection is not None:
                with lock:
                    in_flight.discard(connection)
            super()._put_conn(connection)  # type: ignore[misc]

    class _Http(_Tracking, HTTPConnectionPool):
        pass

    class _Https(_Tracking, HTTPSConnectionPool):
        pass

    adapter = HTTPAdapter()
    adapter.poolmanager.pool_classes_by_scheme = {"http": _Http, "https": _Https}
    return adapter


def _before_sending(exc: BaseException) -> bool:
    """Whether a ``requests.ConnectionError`` happened before anything was sent."""
    import requests

    if isinstance(exc, requests.ConnectTimeout):
        return True
    try:
        from urllib3.exceptions import NameResolutionError, NewConnectionError
    except ImportError:  # pragma: no cover - urllib3 < 2
        from urllib3.exceptions import NewConnectionError

        NameResolutionError = NewConnectionError  # type: ignore[misc,assignment]
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, (NewConnectionError, NameResolutionError, ConnectionRefusedError)):
            return True
        todo.extend(
            [getattr(item, "reason", None), item.__cause__, item.__context__]
            + [a for a in getattr(item, "args", ()) if isinstance(a, BaseException)]
        )
    return False


_SECRET_PARAM = re.compile(r"(signature|listenKey)=[^&\s\"']*", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with the values of ``signature=`` and ``listenKey=`` hidden."""
    return _SECRET_PARAM.sub(lambda m: f"{m.group(1)}=<hidden>", text)


def _short(exc: BaseException) -> str:
    text = redact(str(exc))
    return text if len(text) <= 300 else text[:300] + "..."


class _RedactUrls(logging.Filter):
    """Hides signatures in urllib3's DEBUG lines, which show each request's URL."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(isinstance(a, str) and "=" in a for a in args):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in args)
        return True


def _install_redaction() -> None:
    logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _RedactUrls) for f in logger.filters):
        logger.addFilter(_RedactUrls())


_install_redaction()
