"""bfsync: a synchronous client for the Binance USD-M Futures WebSocket API."""
