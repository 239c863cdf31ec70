"""agent-api: a self-hosted AI agent API server."""

__version__ = "0.1.0"
