"""FastAPI surface: `create_app`, dependencies, routers, wire schemas, the error table and
pure-ASGI middleware."""
