"""HTTP and WebSocket routers, one module per resource; `create_app` includes each."""
