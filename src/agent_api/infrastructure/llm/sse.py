"""An incremental Server-Sent Events decoder (the WHATWG algorithm, reduced to `data`).

Fed raw bytes in whatever pieces the network delivers, it returns the `data` of each complete
event. Lines end in LF, CRLF or CR; `data:` with or without its one optional space; several
`data:` lines of one event are joined by LF; comments (`: ping`) and other fields (`event`,
`id`, `retry`) are ignored; an event is complete at a blank line. A field line without a
colon is a field name with an empty value, as the standard says.
"""

from __future__ import annotations


class SSEDecoder:
    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[str]:
        """The data of every event completed by `chunk` (often none, sometimes several)."""
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the LF of a CRLF split across two chunks
        self._pending_cr = chunk.endswith(b"\r")
        data = self._buffer + chunk
        # LF and CR are single bytes never found inside a UTF-8 sequence, so split bytes first.
        lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        self._buffer = lines.pop()
        events: list[str] = []
        for line in lines:
            event = self._line(line.decode("utf-8", errors="replace"))
            if event is not None:
                events.append(event)
        return events

    def close(self) -> list[str]:
        """At the end of the body: an unterminated last event is still delivered."""
        events = self.feed(b"\n") if self._buffer else []
        if self._data:
            events.append("\n".join(self._data))
            self._data = []
        return events

    def _line(self, line: str) -> str | None:
        if not line:
            if not self._data:
                return None
            event = "\n".join(self._data)
            self._data = []
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value.removeprefix(" "))
        return None
