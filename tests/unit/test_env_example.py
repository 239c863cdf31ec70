""".env.example documents every variable: each Settings field with its real default, and the
variables the compose file interpolates; nothing else."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from agent_api.config import Settings

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / ".env.example"
COMPOSE_FILE = ROOT / "deployments" / "docker-compose.yml"

_ENTRY = re.compile(r"^(?P<commented>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")
_SECRET_NAME = re.compile(r"(SECRET|PASSWORD|API_KEY|MASTER_KEY|TOKEN)$")


@dataclass(frozen=True)
class Entry:
    name: str
    value: str
    commented: bool
    comment: str  # the comment line(s) right above it


def entries() -> list[Entry]:
    """Every `VAR=value` and commented `# VAR=value` line, in file order."""
    found: list[Entry] = []
    comments: list[str] = []
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = _ENTRY.match(line.strip())
        if match:
            found.append(
                Entry(match["name"], match["value"], bool(match["commented"]), " ".join(comments))
            )
            comments = []
        elif line.startswith("#") and not line.startswith("# ---"):
            comments.append(line.lstrip("#").strip())
        else:
            comments = []
    return found


def setting_names() -> set[str]:
    return {(field.alias or name).upper() for name, field in Settings.model_fields.items()}


def compose_variables() -> set[str]:
    text = COMPOSE_FILE.read_text(encoding="utf-8").replace("$$", "")
    return set(re.findall(r"\$\{([A-Za-z_]\w*)", text))


class _DotenvOnly(Settings):
    """Settings from init values and a dotenv file only: the test process's environment must
    not leak in."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, dotenv_settings)


def _load(env_file: Path | None, **values: Any) -> Settings:
    return _DotenvOnly(_env_file=env_file, **values)  # type: ignore[call-arg]


def test_every_setting_is_documented() -> None:
    missing = setting_names() - {e.name for e in entries()}
    assert not missing, f"Settings fields missing from .env.example: {sorted(missing)}"


def test_every_compose_variable_is_documented() -> None:
    missing = compose_variables() - {e.name for e in entries()}
    assert not missing, f"compose variables missing from .env.example: {sorted(missing)}"


def test_nothing_unknown_is_documented() -> None:
    unknown = {e.name for e in entries()} - setting_names() - compose_variables()
    assert not unknown, f".env.example documents variables nothing reads: {sorted(unknown)}"


def test_each_variable_appears_once_with_a_comment() -> None:
    names = [e.name for e in entries()]
    assert len(names) == len(set(names)), "a variable is documented twice"
    undocumented = [e.name for e in entries() if not e.comment]
    assert not undocumented, f"no comment line above: {undocumented}"


def test_copying_the_file_as_is_keeps_every_default(tmp_path: Path) -> None:
    """The active lines state the real defaults (and compose-only lines are ignored by the app),
    so `cp .env.example .env` changes nothing; unset-by-default variables stay commented."""
    assert _load(ENV_EXAMPLE).model_dump() == _load(None).model_dump()


def test_unset_by_default_settings_are_commented_out() -> None:
    by_name = {e.name: e for e in entries()}
    for name, field in Settings.model_fields.items():
        if field.default is None:
            assert by_name[name.upper()].commented, f"{name.upper()} would be set to ''"


def test_commented_examples_are_valid_values(tmp_path: Path) -> None:
    examples = {
        e.name.lower(): e.value
        for e in entries()
        if e.commented and e.value and e.name in setting_names()
    }
    assert examples, "no commented examples found"
    settings = _load(None, **examples)
    for name, value in examples.items():
        assert getattr(settings, name) is not None, (name, value)


def test_no_secret_has_a_value() -> None:
    secrets = [e for e in entries() if _SECRET_NAME.search(e.name)]
    assert {e.name for e in secrets} >= {"JWT_SECRET", "POSTGRES_PASSWORD", "LLM_API_KEY"}
    with_value = [e.name for e in secrets if e.value]
    assert not with_value, f"secrets with a value in .env.example: {with_value}"


def test_compose_only_variables_say_whether_compose_requires_them() -> None:
    for entry in entries():
        if entry.name not in setting_names():
            assert re.match(r"compose: (required|optional)\.", entry.comment), entry.name
