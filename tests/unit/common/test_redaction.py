"""No password, token or key in what the processes log or print."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from orchestrator.common.logs import JsonFormatter, PlainFormatter, configure_logging
from orchestrator.common.redaction import (
    MASK,
    forget_secrets,
    redact,
    remember_secrets,
    secret_values,
)

PASSWORD = "s3cr3t-Pa55"


@pytest.fixture(autouse=True)
def no_known_secrets() -> Iterator[None]:
    forget_secrets()
    yield
    forget_secrets()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"postgresql://orch:{PASSWORD}@db:5432/orch", "postgresql://orch:***@db:5432/orch"),
        (f"redis://:{PASSWORD}@cache:6379/0", "redis://:***@cache:6379/0"),
        (f"rediss://default:{PASSWORD}@cache/0", "rediss://default:***@cache/0"),
        (f"nats://alice:{PASSWORD}@bus:4222", "nats://alice:***@bus:4222"),
        (f"nats://{PASSWORD}@bus:4222", "nats://***@bus:4222"),
        (f"http://opencode:{PASSWORD}@127.0.0.1:4096", "http://opencode:***@127.0.0.1:4096"),
        (
            f"host=db user=orch password={PASSWORD} dbname=orch",
            "host=db user=orch password=*** dbname=orch",
        ),
        (
            f"postgresql://db/orch?sslmode=require&password={PASSWORD}",
            "postgresql://db/orch?sslmode=require&password=***",
        ),
        (
            f"cannot connect to postgresql://orch:{PASSWORD}@db/orch: refused",
            "cannot connect to postgresql://orch:***@db/orch: refused",
        ),
    ],
)
def test_credentials_in_urls_and_dsns_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://orch@127.0.0.1:38415/orch",
        "http://127.0.0.1:8080/api/v1",
        "redis://127.0.0.1:44231/0",
        "gRPC listening on 127.0.0.1:50051 (TLS)",
        "session 5f0c… started by alice@example.com",
    ],
)
def test_what_holds_no_secret_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_secret_variables_and_url_passwords_are_found_in_the_environment() -> None:
    environ = {
        "OPENCODE_SERVER_PASSWORD": "open-sesame",
        "ANTHROPIC_API_KEY": "sk-ant-123456",
        "GITHUB_TOKEN": "ghp_abcdef",
        "ORCH_DATABASE_URL": "postgresql://orch:p%40ss-word@db/orch",
        "ORCH_REDIS_URL": "redis://127.0.0.1:6379/0",
        "ORCH_GRPC_TLS_KEY_FILE": "/etc/orch/tls/task.key",
        "PATH": "/usr/bin",
        "DB_PASSWORD": "pw",  # too short to mask without masking ordinary words
    }
    found = secret_values(environ)
    assert set(found) == {"open-sesame", "sk-ant-123456", "ghp_abcdef", "p@ss-word", "pw"}
    remember_secrets(found)
    line = redact("basic auth opencode:open-sesame; key sk-ant-123456; pw p@ss-word; path /usr/bin")
    assert line == "basic auth opencode:***; key ***; pw ***; path /usr/bin"


def _log_through(formatter: logging.Formatter) -> str:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    logger = logging.getLogger(f"test.redaction.{id(formatter)}")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning("connecting to %s", f"postgresql://orch:{PASSWORD}@db/orch")
        try:
            raise ConnectionError(f"redis://:{PASSWORD}@cache:6379 refused; token {PASSWORD}")
        except ConnectionError:
            logger.exception("lost the cache")
    finally:
        logger.removeHandler(handler)
    return out.getvalue()


@pytest.mark.parametrize("formatter", [JsonFormatter("test"), PlainFormatter("test")])
def test_log_lines_and_tracebacks_carry_no_secret(formatter: logging.Formatter) -> None:
    remember_secrets([PASSWORD])
    text = _log_through(formatter)
    assert PASSWORD not in text
    assert "postgresql://orch:***@db/orch" in text
    assert "redis://:***@cache:6379 refused; token ***" in text


def test_json_lines_stay_json() -> None:
    lines = _log_through(JsonFormatter("test")).splitlines()
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    assert entries[0]["msg"] == "connecting to postgresql://orch:***@db/orch"
    assert "ConnectionError: redis://:***@cache:6379" in entries[1]["exc"]


def test_an_entry_point_masks_the_secrets_of_its_environment(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`configure_logging` learns OPENCODE_SERVER_PASSWORD's value: a worker that logged the
    value (an OpenCode error quoting its request, say) shows *** instead."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging(
            "worker-test",
            json_lines=True,
            environ={"OPENCODE_SERVER_PASSWORD": "horse-battery-staple"},
        )
        assert isinstance(root.handlers[0], logging.StreamHandler)
        assert root.handlers[0].stream is sys.stdout
        logging.getLogger("orchestrator.worker").warning(
            "OpenCode refused opencode:%s", "horse-battery-staple"
        )
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    out = capsys.readouterr().out
    assert "horse-battery-staple" not in out
    assert "OpenCode refused opencode:***" in out


def test_an_api_key_keeps_its_id_and_loses_its_secret() -> None:
    key = "orch_0123456789abcdef_" + "ab" * 32
    assert redact(f"minted {key} for ci") == f"minted orch_0123456789abcdef_{MASK} for ci"
    # Not a key: left alone.
    assert redact("orch_up and orch_0123_x") == "orch_up and orch_0123_x"
