"""The HTTP + WebSocket API (FastAPI); only this package imports FastAPI."""
