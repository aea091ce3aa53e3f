"""The Dockerfile, read as text: there is no Docker engine to build it with here.

The health check is the exception: its Python is run for real, against a small
local server standing in for the portal.
"""

import json
import re
import shlex
import socket
import subprocess
import sys
import threading
import tomllib
from fnmatch import fnmatch
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    found = []
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        # Docker drops comment and blank lines even in the middle of a continued instruction.
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        word, _, rest = current.partition(" ")
        found.append((word.upper(), rest.strip()))
        current = ""
    return found


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instruction in instructions(DOCKERFILE.read_text(encoding="utf-8")):
        if instruction[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def final_stage() -> list[tuple[str, str]]:
    return stages()[-1]


def args_of(stage: list[tuple[str, str]], name: str) -> list[str]:
    return [rest for word, rest in stage if word == name]


def split_flags(rest: str) -> tuple[dict[str, str], list[str]]:
    """An instruction's --flags and its remaining words, in shell or JSON form."""
    flags = {}
    words = shlex.split(rest) if not rest.lstrip().startswith("[") else []
    while words and words[0].startswith("--"):
        key, _, value = words.pop(0)[2:].partition("=")
        flags[key] = value
    if rest.lstrip().startswith("["):
        words = json.loads(rest)
    return flags, words


def env_values(stage: list[tuple[str, str]]) -> dict[str, str]:
    values = {}
    for rest in args_of(stage, "ENV"):
        for word in shlex.split(rest):
            key, _, value = word.partition("=")
            values[key] = value
    return values


def stage_names() -> list[str]:
    names = []
    for stage in stages():
        _, words = split_flags(stage[0][1])
        names.append(words[2] if len(words) == 3 and words[1].upper() == "AS" else "")
    return names


def context_copies() -> list[str]:
    """The build-context paths every COPY and ADD without --from reads."""
    sources = []
    for stage in stages():
        for word, rest in stage:
            if word in ("COPY", "ADD"):
                flags, words = split_flags(rest)
                if "from" not in flags:
                    sources += words[:-1]
    return sources


def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def ignored(path: str) -> bool:
    """Whether .dockerignore keeps the path out; a left-out folder takes its contents with it."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    return any(fnmatch(prefix, pattern.strip("/")) or fnmatch(prefix, pattern.removeprefix("**/"))
               for prefix in prefixes
               for pattern in dockerignore_patterns() if not pattern.startswith("!"))


def test_it_builds_in_at_least_two_stages():
    assert len(stages()) >= 2


def test_its_stages_run_the_python_the_project_requires():
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "requires-python"]
    minimum = tuple(int(n) for n in re.fullmatch(r">=(\d+)\.(\d+)", requires).groups())
    for stage in stages():
        _, words = split_flags(stage[0][1])
        version = re.fullmatch(r"python:(\d+)\.(\d+)-slim", words[0])
        assert version, words[0]
        assert tuple(int(n) for n in version.groups()) >= minimum


def test_the_final_stage_takes_the_virtualenv_from_an_earlier_stage():
    earlier = [name for name in stage_names()[:-1] if name]
    froms = [split_flags(rest)[0].get("from") for rest in args_of(final_stage(), "COPY")]
    assert any(name in earlier for name in froms)


def test_the_builder_installs_the_project_with_gunicorn_among_its_dependencies():
    runs = " ".join(args_of(stages()[0], "RUN"))
    assert "pip install ." in runs
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "dependencies"]
    assert any(d.startswith("gunicorn") for d in dependencies)


def test_the_final_stage_runs_as_a_user_other_than_root():
    users = args_of(final_stage(), "USER")
    assert users, "the final stage never switches user"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


def test_it_collects_static_files_at_build_time():
    runs = [rest for rest in args_of(final_stage(), "RUN") if "collectstatic" in rest]
    assert runs
    assert "manage.py collectstatic --no-input" in runs[0]


def test_the_build_only_secret_key_is_set_for_that_one_line():
    run = next(rest for rest in args_of(final_stage(), "RUN") if "collectstatic" in rest)
    assert re.search(r"\bSECRET_KEY=\S+", run)
    for stage in stages():
        assert "SECRET_KEY" not in env_values(stage)
        assert not any(rest.split("=")[0].strip() == "SECRET_KEY" for rest in args_of(stage, "ARG"))


def test_the_build_writes_no_keys_into_the_data_volume():
    # Without keys in the environment, settings generate them into DATA_DIR; in /data they would
    # be baked into the image and copied into every new volume.
    run = next(rest for rest in args_of(final_stage(), "RUN") if "collectstatic" in rest)
    data_dir = re.search(r"\bDATA_DIR=(\S+)", run)
    assert data_dir, "collectstatic runs with the image's DATA_DIR"
    assert data_dir.group(1).rstrip("/") != "/data"


def test_data_lives_in_a_volume_at_data():
    stage = final_stage()
    assert env_values(stage).get("DATA_DIR") == "/data"
    volumes = " ".join(args_of(stage, "VOLUME"))
    assert "/data" in (json.loads(volumes) if volumes.startswith("[") else volumes.split())


def test_it_exposes_port_8000():
    exposed = " ".join(args_of(final_stage(), "EXPOSE")).split()
    assert "8000" in exposed or "8000/tcp" in exposed


def test_the_entry_script_runs_the_web_role_by_default():
    assert json.loads(args_of(final_stage(), "ENTRYPOINT")[-1]) == ["/app/deploy/entrypoint.sh"]
    assert json.loads(args_of(final_stage(), "CMD")[-1]) == ["web"]
    script = (ROOT / "deploy" / "entrypoint.sh").read_text(encoding="utf-8")
    assert "gunicorn pixverse_site.wsgi" in script and "manage.py qcluster" in script
    assert "exec " in script  # PID 1 is the server itself, so `docker stop` reaches it
    wsgi = (ROOT / "pixverse_site" / "wsgi.py").read_text(encoding="utf-8")
    assert re.search(r"^application = ", wsgi, re.MULTILINE)


def test_static_files_are_hashed_in_the_image():
    assert env_values(final_stage()).get("STATIC_HASHED") == "true"


def test_every_path_it_copies_from_the_build_context_exists():
    sources = context_copies()
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source


def test_the_dockerignore_lets_every_copied_path_through():
    for source in context_copies():
        assert not ignored(source), source


def test_the_build_context_leaves_out_local_keys_and_the_virtualenv():
    for path in ("data", "data/secret_key", ".venv", ".git", ".env"):
        assert ignored(path), path


# --- The health check, run against a stand-in server ---------------------------------------------

def test_the_healthcheck_is_the_portals_own_module():
    rest = args_of(final_stage(), "HEALTHCHECK")[-1]
    exec_form = json.loads(rest[rest.index("CMD") + len("CMD"):])
    assert exec_form == ["python", "-m", "pixverse_site.healthcheck"]


class Portal(BaseHTTPRequestHandler):
    status = 200
    seen: list

    def do_GET(self):
        self.seen.append((self.path, self.headers.get("Host")))
        self.send_response(self.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def run_healthcheck(port: int, hosts: str = "portal.example.com") -> int:
    env = {"PORT": str(port), "ALLOWED_HOSTS": hosts, "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "pixverse_site.healthcheck"], cwd=ROOT, env=env,
                          capture_output=True, timeout=30).returncode


@pytest.mark.parametrize(("status", "exit_code"), [(200, 0), (302, 1), (400, 1), (503, 1)])
def test_the_healthcheck_is_healthy_only_on_200_from_healthz(status, exit_code):
    handler = type("Handler", (Portal,), {"status": status, "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        # Docker reads 0 as healthy and 1 as unhealthy; any other code is reserved.
        assert run_healthcheck(server.server_address[1], "*,portal.example.com") == exit_code
        assert handler.seen == [("/healthz", "portal.example.com")]
    finally:
        server.shutdown()
        server.server_close()


def test_the_healthcheck_fails_when_nothing_listens():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert run_healthcheck(port) == 1
