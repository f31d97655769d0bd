"""The HTTP API: FastAPI routers that parse, call one service verb, and render JSON."""
