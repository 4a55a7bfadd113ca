"""The `kefu` command as a user runs it: JSON out, one-line errors, the same database setting everywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

KEFU = [sys.executable, "-m", "kefu"]


def kefu(*args: str, cwd: Path, db: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEFU_")}
    if db:
        env["KEFU_DB"] = db
    return subprocess.run([*KEFU, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_app_create_and_agent_add_print_json(tmp_path: Path) -> None:
    created = kefu(
        "app", "create", "小店", "--admin-email", "boss@example.com", "--admin-password", "pw-123456", cwd=tmp_path
    )
    assert created.returncode == 0, created.stderr
    app = json.loads(created.stdout)
    assert set(app) == {"app_id", "secret", "api_key", "admin_id"}
    assert (tmp_path / "kefu.db").exists()  # the default database is ./kefu.db

    added = kefu(
        "agent",
        "add",
        "--app",
        app["app_id"],
        "--email",
        "li@example.com",
        "--password",
        "pw-123456",
        "--group",
        "vip",
        "--group",
        "aftersales",
        "--level",
        "3",
        "--max-concurrent",
        "4",
        cwd=tmp_path,
    )
    assert added.returncode == 0, added.stderr
    agent = json.loads(added.stdout)
    assert (agent["groups"], agent["level"], agent["max_concurrent"], agent["role"]) == (
        ["aftersales", "vip"],
        3,
        4,
        "agent",
    )


def test_kefu_db_is_honoured_by_every_command(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    assert kefu("migrate", cwd=tmp_path, db=db).returncode == 0
    created = kefu(
        "app", "create", "a", "--admin-email", "a@example.com", "--admin-password", "pw-123456", cwd=tmp_path, db=db
    )
    assert created.returncode == 0
    assert (tmp_path / "elsewhere.db").exists() and not (tmp_path / "kefu.db").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["agent", "add", "--app", "app_missing", "--email", "x@example.com", "--password", "pw-123456"],
        ["agent", "add", "--bogus"],
        ["app", "create", "x", "--admin-email", "not-an-email", "--admin-password", "pw-123456"],
        ["app", "create", "x", "--admin-email", "a@example.com", "--admin-password", "short"],
        ["migrate", "--db", "mysql://nope"],
        ["serve", "--port", "not-a-number"],
    ],
)
def test_bad_input_is_one_line_on_stderr_and_a_nonzero_exit(tmp_path: Path, args: list[str]) -> None:
    result = kefu(*args, cwd=tmp_path)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("kefu: error:"), result.stderr
    assert "Traceback" not in result.stderr


def test_a_duplicate_agent_is_refused(tmp_path: Path) -> None:
    app = json.loads(
        kefu(
            "app", "create", "a", "--admin-email", "a@example.com", "--admin-password", "pw-123456", cwd=tmp_path
        ).stdout
    )
    args = ["agent", "add", "--app", app["app_id"], "--email", "dup@example.com", "--password", "pw-123456"]
    assert kefu(*args, cwd=tmp_path).returncode == 0
    again = kefu(*args, cwd=tmp_path)
    assert again.returncode != 0 and "already" in again.stderr
