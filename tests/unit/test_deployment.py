"""The deployment files, checked without a Docker engine: the compose file, the Dockerfile,
.dockerignore and the LiteLLM routing are parsed and cross-checked against the code."""

from __future__ import annotations

import ast
import json
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from agent_api.__main__ import main as cli_main
from agent_api.config import ExplicitSettings, Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENTS = ROOT / "deployments"

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}, ${VAR:+alt}
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}")
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|API_KEY|MASTER_KEY|TOKEN|AUTH)$")
REQUIRED_SECRETS = {
    "JWT_SECRET",
    "POSTGRES_PASSWORD",
    "REDIS_PASSWORD",
    "LITELLM_MASTER_KEY",
    "OPENAI_API_KEY",
}
OFFERED_MODELS = ["gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet"]


# --- readers ---------------------------------------------------------------------------------


def compose_text() -> str:
    return (DEPLOYMENTS / "docker-compose.yml").read_text(encoding="utf-8")


def services() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(compose_text())["services"]
    return data


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's `environment`, whichever of compose's two syntaxes it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's interpolation, `variables` standing for the shell and --env-file."""

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if variables.get(name):
            return variables[name]
        if op in (":-", "-"):
            return arg or ""
        raise KeyError(f"{name} unset: compose would refuse to start")

    return INTERPOLATION.sub(substitute, value.replace("$$", "$"))


def setting_env_names() -> set[str]:
    return {(field.alias or name).upper() for name, field in Settings.model_fields.items()}


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """(KEYWORD, arguments) per build stage, continuations joined and comments dropped. The
    first list holds what precedes the first FROM."""
    stages: list[list[tuple[str, str]]] = [[]]
    pending = ""
    for line in (DEPLOYMENTS / "Dockerfile").read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, args = (pending + stripped).partition(" ")
        pending = ""
        if keyword.upper() == "FROM":
            stages.append([])
        stages[-1].append((keyword.upper(), args.strip()))
    return stages[1:]


def instructions(stage: list[tuple[str, str]], keyword: str) -> list[str]:
    return [args for kw, args in stage if kw == keyword]


def copy_parts(args: str) -> tuple[list[str], str]:
    tokens = [token for token in args.split() if not token.startswith("--")]
    return tokens[:-1], tokens[-1]


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def dockerignored(path: str) -> bool:
    """Docker's rule: the last pattern that matches the path or one of its parent directories
    decides, `!` re-including."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        regex = _glob_regex(line.lstrip("!").strip().strip("/"))
        if any(regex.match(candidate) for candidate in candidates):
            ignored = not line.startswith("!")
    return ignored


# --- compose ---------------------------------------------------------------------------------


def test_compose_defines_the_stack() -> None:
    svc = services()
    assert set(svc) == {"api", "migrate", "postgres", "redis", "litellm"}
    assert svc["postgres"]["image"] == "postgres:16"
    assert svc["redis"]["image"] == "redis:7"
    assert "berriai/litellm" in svc["litellm"]["image"]
    assert svc["api"]["image"] == svc["migrate"]["image"]
    assert svc["api"]["build"]["dockerfile"] == "deployments/Dockerfile"
    assert (DEPLOYMENTS / svc["api"]["build"]["context"]).resolve() == ROOT


def test_api_starts_after_migrations_and_healthy_dependencies() -> None:
    svc = services()
    depends = svc["api"]["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    for name in ("postgres", "redis", "litellm"):
        assert depends[name]["condition"] == "service_healthy"
    assert svc["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_every_service_waited_for_as_healthy_has_a_healthcheck() -> None:
    svc = services()
    for service in svc.values():
        for name, spec in (service.get("depends_on") or {}).items():
            assert name in svc, f"depends_on names an unknown service {name!r}"
            if spec["condition"] == "service_healthy":
                check = svc[name].get("healthcheck") or {}
                assert check.get("test"), name
                assert not check.get("disable"), name


def test_migrate_is_a_one_shot_migration() -> None:
    migrate = services()["migrate"]
    assert migrate["command"] == ["migrate"]
    assert migrate["restart"] == "no"


def test_api_environment_points_at_the_stack() -> None:
    env = environment(services()["api"])
    assert env["DB_AUTO_MIGRATE"] == "false"
    assert env["DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert env["REDIS_URL"].startswith("redis://")
    assert env["LLM_BASE_URL"] == "http://litellm:4000"
    assert INTERPOLATION.fullmatch(env["LLM_API_KEY"])["name"] == "LITELLM_MASTER_KEY"  # type: ignore[index]
    assert env["LLM_MODELS"].split(",") == OFFERED_MODELS
    assert env["SERVER_HOST"] == "0.0.0.0"


def test_urls_in_the_environment_name_existing_services() -> None:
    svc = services()
    dummy = {m["name"]: "x" for m in INTERPOLATION.finditer(compose_text())}
    checked = 0
    for service in svc.values():
        for value in environment(service).values():
            if "://" not in value:
                continue
            url = urlsplit(interpolate(value, dummy))
            if url.hostname and url.hostname not in {"127.0.0.1", "localhost"}:
                assert url.hostname in svc, f"{value} names an unknown host"
                checked += 1
    assert checked >= 3  # the database, Redis and LiteLLM URLs


def test_the_api_environment_is_a_valid_configuration() -> None:
    """With every required variable set, the api service's environment is accepted by Settings
    (a typo in a name or value would be a startup failure in the container)."""
    variables = {m["name"]: "s" * 48 for m in INTERPOLATION.finditer(compose_text())}
    env = {k: interpolate(v, variables) for k, v in environment(services()["api"]).items()}
    unknown = set(env) - setting_env_names()
    assert not unknown, f"the api service sets variables the app does not read: {unknown}"
    settings = ExplicitSettings(**{k.lower(): v for k, v in env.items()})
    assert settings.uses_postgres
    assert settings.effective_llm_provider == "openai"
    assert settings.offered_models == OFFERED_MODELS
    assert not settings.db_auto_migrate


def test_every_setting_is_set_for_the_api_or_documented() -> None:
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", _env_example(), re.MULTILINE))
    api_env = set(environment(services()["api"]))
    missing = setting_env_names() - api_env - documented
    assert not missing, f"neither set in compose nor documented in .env.example: {missing}"


def _env_example() -> str:
    return (ROOT / ".env.example").read_text(encoding="utf-8")


def test_no_secret_has_a_default_value() -> None:
    found = {m["name"] for m in INTERPOLATION.finditer(compose_text())}
    assert found >= REQUIRED_SECRETS
    for match in INTERPOLATION.finditer(compose_text()):
        name, op, arg = match["name"], match["op"], match["arg"]
        if name in REQUIRED_SECRETS:
            assert op == ":?", f"{name} must be required (${{{name}:?...}})"
        elif SECRET_NAME.search(name):
            assert op in (None, ":?", "?") or not arg, f"{name} has a default value"
    for service_name, service in services().items():
        for name, value in environment(service).items():
            if SECRET_NAME.search(name):
                assert INTERPOLATION.fullmatch(value), f"{service_name}.{name} is a literal"
            if "://" in value and "@" in value:
                userinfo = value.split("://", 1)[1].rsplit("@", 1)[0]
                assert INTERPOLATION.search(userinfo), f"{service_name}.{name} embeds a password"


def test_only_the_api_is_published_on_the_host() -> None:
    for name, service in services().items():
        if name != "api":
            assert "ports" not in service, f"{name} is published on the host"
    assert services()["api"]["ports"] == ["${API_PORT:-8080}:8080"]


def test_stop_grace_period_outlasts_the_graceful_shutdown() -> None:
    grace = services()["api"]["stop_grace_period"]
    assert grace.endswith("s")
    assert int(grace[:-1]) > ExplicitSettings().shutdown_timeout.total_seconds()


# --- LiteLLM ---------------------------------------------------------------------------------


def test_litellm_routes_the_offered_models() -> None:
    config = yaml.safe_load((DEPLOYMENTS / "litellm_config.yaml").read_text(encoding="utf-8"))
    routes = {entry["model_name"]: entry["litellm_params"] for entry in config["model_list"]}
    assert set(routes) == set(OFFERED_MODELS)
    assert routes["gpt-4o"]["model"] == "openai/gpt-4o"
    assert routes["gpt-4o-mini"]["model"] == "openai/gpt-4o-mini"
    assert routes["claude-3-5-sonnet"]["model"].startswith("anthropic/claude-3-5-sonnet")
    assert config["general_settings"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"


def test_litellm_reads_every_key_it_needs_from_its_environment() -> None:
    text = (DEPLOYMENTS / "litellm_config.yaml").read_text(encoding="utf-8")
    needed = set(re.findall(r"os\.environ/(\w+)", text))
    assert needed == {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "LITELLM_MASTER_KEY"}
    assert needed <= set(environment(services()["litellm"]))
    assert not re.search(r"\bsk-[A-Za-z0-9]", text), "a literal key in litellm_config.yaml"
    mounted = services()["litellm"]["volumes"][0].split(":")[0]
    assert (DEPLOYMENTS / mounted).resolve() == DEPLOYMENTS / "litellm_config.yaml"


# --- Dockerfile ------------------------------------------------------------------------------


def test_dockerfile_builds_the_venv_from_the_lockfile_in_a_separate_stage() -> None:
    stages = dockerfile_stages()
    runtime = stages[-1]
    builders = [s for s in stages[:-1] if any("uv sync" in a for a in instructions(s, "RUN"))]
    assert len(builders) == 1
    syncs = [a for a in instructions(builders[0], "RUN") if "uv sync" in a]
    assert all("--frozen" in a and "--no-dev" in a for a in syncs)
    assert "--no-editable" in syncs[-1]  # the package is installed into the venv, not linked
    assert re.match(r"python:\$\{PYTHON_VERSION\}-slim", instructions(runtime, "FROM")[0])
    # The same base image in both stages: the venv's interpreter links point into it.
    base = instructions(runtime, "FROM")[0].split()[0]
    assert instructions(builders[0], "FROM")[0].split()[0] == base
    assert not any("uv" in a.split() for a in instructions(runtime, "RUN"))


def test_runtime_stage_holds_only_the_venv_and_the_migrations() -> None:
    runtime = dockerfile_stages()[-1]
    copies = instructions(runtime, "COPY")
    from_build = [c for c in copies if c.startswith("--from=")]
    assert [copy_parts(c) for c in from_build] == [(["/opt/venv"], "/opt/venv")]
    local = [copy_parts(c) for c in copies if not c.startswith("--from=")]
    assert sorted(src for sources, _ in local for src in sources) == ["alembic.ini", "migrations"]
    workdir = instructions(runtime, "WORKDIR")[-1]
    # `agent-api migrate` looks for alembic.ini and migrations/ in the working directory.
    for sources, dest in local:
        assert dest.startswith(("./", workdir)), (sources, dest)


def test_every_copy_source_exists_and_is_in_the_build_context() -> None:
    for stage in dockerfile_stages():
        for args in instructions(stage, "COPY"):
            if args.startswith("--from="):
                continue
            for source in copy_parts(args)[0]:
                path = ROOT / source
                assert path.exists(), f"COPY {source}: not in the repository"
                files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
                for file in files:
                    rel = file.relative_to(ROOT).as_posix()
                    if "__pycache__" not in rel:
                        assert not dockerignored(rel), f"{rel} is excluded by .dockerignore"


@pytest.mark.parametrize(
    "path", [".env", ".venv/bin/python", ".git/config", "agent_api.db", "tests/conftest.py"]
)
def test_dockerignore_keeps_secrets_and_local_state_out_of_the_context(path: str) -> None:
    assert dockerignored(path)


def test_image_runs_as_a_non_root_user() -> None:
    users = instructions(dockerfile_stages()[-1], "USER")
    assert users, "no USER in the runtime stage"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_embedded_database_lives_in_a_directory_the_user_owns() -> None:
    """Run without DATABASE_URL, the image uses SQLite in /app/data, which the non-root user
    must be able to write (the rest of /app stays root's)."""
    runtime = dockerfile_stages()[-1]
    env = " ".join(instructions(runtime, "ENV"))
    assert "DATABASE_URL=sqlite+aiosqlite:////app/data/" in env
    setup = " ".join(instructions(runtime, "RUN"))
    assert re.search(r"chown \S+ /app/data", setup)
    uid = instructions(runtime, "USER")[-1].split(":")[0]
    assert re.search(rf"useradd .*--uid {uid}\b", setup)


def test_image_serves_on_all_interfaces_and_runs_the_cli() -> None:
    runtime = dockerfile_stages()[-1]
    env = " ".join(instructions(runtime, "ENV"))
    assert re.search(r"\bSERVER_HOST=0\.0\.0\.0\b", env)
    assert json.loads(instructions(runtime, "ENTRYPOINT")[-1]) == ["agent-api"]
    assert json.loads(instructions(runtime, "CMD")[-1]) == ["serve"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["agent-api"] == "agent_api.__main__:main"


@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_the_image_commands_exist_in_the_cli(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli_main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"agent-api {command}" in capsys.readouterr().out


def test_healthcheck_probes_health_without_curl_or_wget() -> None:
    checks = instructions(dockerfile_stages()[-1], "HEALTHCHECK")
    assert len(checks) == 1
    exec_form = json.loads(checks[0][checks[0].index("CMD") + 3 :])
    assert exec_form[:2] == ["python", "-c"]
    assert not {"curl", "wget"} & set(re.findall(r"\w+", checks[0]))
    code = exec_form[2]
    ast.parse(code)  # valid Python
    assert "/health" in code
    assert "SERVER_PORT" in code


def test_no_secret_is_baked_into_the_image() -> None:
    for stage in dockerfile_stages():
        for keyword in ("ENV", "ARG"):
            for args in instructions(stage, keyword):
                assert not SECRET_NAME.search(args.split("=")[0]), args
                assert "JWT_SECRET" not in args, args
                assert "API_KEY" not in args, args
