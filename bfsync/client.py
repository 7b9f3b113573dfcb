"""``BinanceClient``: chooses the endpoints and builds connected services."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable, Optional

from .config import (
    PROD_REST_URL,
    PROD_STREAM_URL,
    PROD_WS_URL,
    TESTNET_REST_URL,
    TESTNET_STREAM_URL,
    TESTNET_WS_URL,
)
from .service import WebSocketService

if TYPE_CHECKING:
    from .market import MarketService
    from .userstream import UserDataStream

__all__ = ["BinanceClient"]


class BinanceClient:
    """
    The entry point, as in ``binance-futures-async``.

    Args:
        testnet: use Binance's testnet URLs (``ws_url`` and ``rest_url`` in a service's
            ``config`` still win).
    """

    def __init__(self, testnet: bool = False) -> None:
        self.testnet = testnet

    @property
    def ws_url(self) -> str:
        return TESTNET_WS_URL if self.testnet else PROD_WS_URL

    @property
    def rest_url(self) -> str:
        return TESTNET_REST_URL if self.testnet else PROD_REST_URL

    @property
    def stream_url(self) -> str:
        return TESTNET_STREAM_URL if self.testnet else PROD_STREAM_URL

    def websocket_service(
        self,
        api_key: str,
        private_key_path: str,
        enable_validation: bool = False,
        config: Optional[Mapping[str, Any]] = None,
    ) -> WebSocketService:
        """
        A new, connected ``WebSocketService`` (each call makes a new one).

        Blocks at most ``connection_timeout`` seconds.

        Raises:
            AuthenticationError: ``private_key_path`` holds no usable key.
            ValueError: a bad ``config``.
            ConnectionError: the connection could not be opened.
        """
        merged = {
            "ws_url": self.ws_url,
            "rest_url": self.rest_url,
            "stream_url": self.stream_url,  # for ws.user_stream()
            **(config or {}),
        }
        service = WebSocketService(api_key, private_key_path, enable_validation, merged)
        service.connect()
        return service

    def market_service(
        self,
        message_handler: Optional[Callable[[dict[str, Any]], object]] = None,
        config: Optional[Mapping[str, Any]] = None,
    ) -> MarketService:
        """
        A new, connected ``MarketService`` (each call makes a new one).

        Blocks at most ``connection_timeout`` seconds (plus one).

        Raises:
            ValueError: a bad ``config`` or a ``message_handler`` that is not callable.
            ConnectionError: the stream server could not be reached.
        """
        from .market import MarketService

        merged = {
            "stream_url": self.stream_url,
            "ws_url": self.ws_url,
            "rest_url": self.rest_url,
            **(config or {}),
        }
        service = MarketService(message_handler, merged)
        service.connect()
        return service

    def user_stream(
        self,
        api_key: str,
        message_handler: Optional[Callable[[dict[str, Any]], object]] = None,
        config: Optional[Mapping[str, Any]] = None,
    ) -> UserDataStream:
        """
        A new, started ``UserDataStream`` of ``api_key``'s account (``bfsync.userstream``).

        Needs only the API key: it opens its own ws-fapi connection (no signing) for the
        listenKey, on the stream's own I/O thread. Blocks at most about ``connection_timeout``
        twice plus ``request_timeout``.

        Raises:
            ListenKeyError: ``userDataStream.start`` refused (-2015: a bad or revoked key).
            RequestTimeoutError, ConnectionError: as ``UserDataStream.start``.
            ValueError: a bad ``config`` or ``message_handler``.
        """
        from .userstream import UserDataStream

        merged = {
            "stream_url": self.stream_url,
            "ws_url": self.ws_url,
            "rest_url": self.rest_url,
            **(config or {}),
        }
        stream = UserDataStream(api_key, message_handler, merged)
        stream.start()
        return stream
