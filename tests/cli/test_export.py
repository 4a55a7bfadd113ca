"""`kefu export` as a user runs it: NDJSON records, the API's filters, a progress bar on stderr only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import Node, running_node

KEFU = [sys.executable, "-m", "kefu"]


def kefu(*args: str, cwd: Path, db: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEFU_")} | {"KEFU_DB": db}
    return subprocess.run([*KEFU, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)


async def seed(node: Node) -> tuple[str, dict[str, str]]:
    app = await node.create_app()
    sids = {}
    for user_id, text in (
        ("U-risk", "理财产品风险等级如何划分?"),
        ("U-chart", "Error: Component 'Chart' loading failed"),
    ):
        visitor = await node.visitor(app, user_id)
        sid = (await visitor.open_chat())["session_id"]
        await visitor.text(sid, text)
        sids[user_id] = sid
    return app.app_id, sids


async def test_export_writes_ndjson_with_the_api_filters(db_url: str, tmp_path: Path) -> None:
    async with running_node(db_url, search_index_interval_s=3600) as node:  # the CLI must index by itself
        app_id, sids = await seed(node)

    out = tmp_path / "archive.ndjson"
    done = kefu("export", "--app", app_id, "-o", str(out), cwd=tmp_path, db=db_url)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["session_id"] for r in records) == sorted(sids.values())
    assert "exported 2 conversations" in done.stderr

    done = kefu("export", "--app", app_id, "--q", "风险等级", "--quiet", cwd=tmp_path, db=db_url)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["session_id"] for line in done.stdout.splitlines()] == [sids["U-risk"]]

    done = kefu("export", "--app", app_id, "--from", "2999-01-01T00:00:00.000Z", cwd=tmp_path, db=db_url)
    assert done.returncode == 0 and done.stdout == ""

    for bad in (["--app", "app_nope"], ["--app", app_id, "--to", "tomorrow"]):
        done = kefu("export", *bad, cwd=tmp_path, db=db_url)
        assert done.returncode != 0 and done.stdout == ""
        assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("kefu: error:")
