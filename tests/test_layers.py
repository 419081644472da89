"""The layers stay as docs/architecture.md draws them.

- Production never loads the dev tools: building the app, ``bot serve`` (up and
  answering a signed webhook) and ``bot worker`` (up and healthy) run in their
  own interpreters under ``-X importtime``, which lists every module imported;
  no ``devtools`` module may be among them.
- The import rules, checked over the source (AST): ``bot/`` and ``webhooks/``
  never import ``devtools`` (only ``bot/cli.py`` may, inside a command
  function); ``bot/`` knows no HTTP server (FastAPI, Starlette, uvicorn) and
  no ``webhooks`` (again except inside ``bot/cli.py``'s command functions).
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bot.messages import Channel
from bot.settings import load_settings
from bot.worker import check_health
from devtools.webhook_client import WebhookClient, inbound_form, parse_twiml
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, BOT_NUMBER
from tests.support.redis_server import free_port

ROOT = Path(__file__).resolve().parents[1]
DEV_PACKAGE = "devtools"
HTTP_SERVER_PACKAGES = ("fastapi", "starlette", "uvicorn", "sse_starlette", "webhooks")
# The one entry point that may reach the dev tools and the server, lazily, per command.
LAZY_ENTRY_POINT = ROOT / "bot" / "cli.py"


def production_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "REDIS_"))}
    env.update({
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_PHONE_NUMBER": BOT_NUMBER,
        "ENVIRONMENT": "test", "ALLOW_TEST_ENVIRONMENT": "true", "LOG_LEVEL": "WARNING", "PYTHONDONTWRITEBYTECODE": "1",
    })
    env.update(extra)
    return env


def imported_modules(importtime_stderr: str) -> set[str]:
    """The modules ``python -X importtime`` reported (one ``import time: … | name`` line each)."""
    names = set()
    for line in importtime_stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":  # the header line
                names.add(name)
    return names


def dev_modules(names: set[str]) -> list[str]:
    return sorted(n for n in names if n == DEV_PACKAGE or n.startswith(DEV_PACKAGE + "."))


def test_building_the_production_app_imports_no_dev_tool() -> None:
    code = (
        "import json, sys\n"
        "from bot.settings import load_settings\n"
        "from webhooks.app import create_app\n"
        "app = create_app(load_settings())\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=production_env(),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    modules = set(json.loads(done.stdout.splitlines()[-1]))
    assert {"webhooks.app", "bot.engine", "bot.brain"} <= modules  # the app was really built
    assert dev_modules(modules) == []


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    stderr: Path  # a file, not a pipe: -X importtime writes more than a pipe holds

    def stop(self) -> set[str]:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return imported_modules(self.stderr.read_text(encoding="utf-8", errors="replace"))


@pytest.fixture
def start_bot(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(*args: str, env: dict[str, str]) -> Running:
        log = tmp_path / f"stderr-{len(started)}.txt"
        with log.open("wb") as sink:
            process = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "bot", *args], cwd=ROOT,
                                       env=env, stdout=subprocess.DEVNULL, stderr=sink)
        started.append(Running(process, log))
        return started[-1]

    yield start
    for running in started:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait()


async def wait_for(what: str, check: Callable[[], Awaitable[bool]], running: Running,
                   seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while True:
        assert running.process.poll() is None, f"it ended before {what}: {running.stderr.read_text()[-2000:]}"
        try:
            if await check():
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_bot_serve_answers_without_importing_a_dev_tool(
    start_bot: Callable[..., Running], redis_url: str
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_bot("serve", "--host", "127.0.0.1", "--port", str(port),
                     env=production_env(REDIS_URL=redis_url, PUBLIC_BASE_URL=base))
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        async def ready() -> bool:
            return (await http.get("/readyz")).status_code == 200

        await wait_for("/readyz", ready, server)
        client = WebhookClient(http, auth_token=AUTH_TOKEN, public_base_url=base)
        answer = await client.post("/twilio/messages", inbound_form(Channel.SMS, "+14155550111", BOT_NUMBER, "hi"))
    assert answer.status_code == 200
    assert parse_twiml(answer.text)  # the bot answered through the whole production path
    modules = server.stop()
    assert {"bot.cli", "webhooks.app", "bot.brain", "uvicorn"} <= modules
    assert dev_modules(modules) == []


async def test_bot_worker_runs_without_importing_a_dev_tool(start_bot: Callable[..., Running], redis_url: str,
                                                            redis_client: object) -> None:
    env = production_env(REDIS_URL=redis_url)
    worker = start_bot("worker", env=env)
    settings = load_settings(twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN, redis_url=redis_url)

    async def healthy() -> bool:
        return await check_health(settings) == 0

    await wait_for("the worker's health record", healthy, worker)
    modules = worker.stop()
    assert {"bot.cli", "bot.worker"} <= modules
    assert dev_modules(modules) == []


# --- the import rules, over the source ---------------------------------------------------------


@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    module: str
    in_function: bool

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line} imports {self.module}"


def imports_of(path: Path) -> list[Import]:
    """Every import in one file, absolute module names, and whether it sits inside a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend(Import(path, child.lineno, a.name, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                module = child.module or ""
                if child.level:  # relative: resolve against the file's package
                    base = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    module = ".".join([*base, module] if module else base)
                found.append(Import(path, child.lineno, module, in_function))
            visit(child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda))

    visit(tree, False)
    return found


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def under(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_the_import_rule_checker_sees_module_level_and_lazy_imports() -> None:
    # The rules below are only as good as this reader: it must see all three kinds.
    sample = ROOT / "bot" / "__main__.py"
    assert [(i.module, i.in_function) for i in imports_of(sample)] == [("bot.cli", False)]
    lazy = [i for i in imports_of(LAZY_ENTRY_POINT) if i.in_function]
    assert any(under(i.module, DEV_PACKAGE) for i in lazy)
    assert any(i.module == "uvicorn" for i in lazy)


@pytest.mark.parametrize("package", ["bot", "webhooks"])
def test_production_packages_never_import_the_dev_tools(package: str) -> None:
    wrong = [
        str(i) for path in sources(package) for i in imports_of(path)
        if under(i.module, DEV_PACKAGE) and not (path == LAZY_ENTRY_POINT and i.in_function)
    ]
    assert wrong == [], "production code may reach devtools only lazily from bot/cli.py"


def test_the_engine_knows_no_http_server() -> None:
    wrong = [
        str(i) for path in sources("bot") for i in imports_of(path)
        if under(i.module, *HTTP_SERVER_PACKAGES) and not (path == LAZY_ENTRY_POINT and i.in_function)
    ]
    assert wrong == [], "bot/ is the engine: FastAPI, Starlette, uvicorn and webhooks/ stay outside it"


def test_without_the_dev_tools_a_dev_command_says_so_in_one_line() -> None:
    # As in the production image, which ships bot/ and webhooks/ only.
    code = (
        "import sys\n"
        "sys.modules['devtools'] = None  # not installed\n"
        "sys.argv = ['bot', 'replay', 'tests/transcripts']\n"
        "from bot.cli import main\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=production_env(),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "bot: this command needs the dev tools (the devtools package), which this installation "
        "does not include; run it from a source checkout"
    ]
