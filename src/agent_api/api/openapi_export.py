"""Export the OpenAPI document: `python -m agent_api.api.openapi_export [PATH | -] [--check]`.

The document describes the application on its default settings. Nothing is read from the
environment or a `.env` file and nothing is connected (the schema comes from the routes; the
lifespan never runs), so every machine exports the same bytes. `make docs` calls this.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent_api.api.app import create_app
from agent_api.config import ExplicitSettings

DEFAULT_PATH = Path("docs/openapi.json")


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the app on default settings (no I/O)."""
    return create_app(ExplicitSettings()).openapi()


def render(document: dict[str, Any]) -> str:
    """Stable text: key order as FastAPI emits it (paths in route order), 2-space indent."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Writes the document (or checks it is current); returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m agent_api.api.openapi_export",
        description="Write the OpenAPI document of agent-api.",
    )
    parser.add_argument(
        "path", nargs="?", default=str(DEFAULT_PATH), help="output file, or - for stdout"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 when PATH differs from the current document",
    )
    args = parser.parse_args(argv)
    document = openapi_document()
    text = render(document)
    if args.path == "-":
        sys.stdout.write(text)
        return 0
    path = Path(args.path)
    if args.check:
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current != text:
            print(f"{path} is out of date: run `make docs`", file=sys.stderr)
            return 1
        print(f"{path} is up to date")
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path} ({len(document['paths'])} paths)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
