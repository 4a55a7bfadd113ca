"""The console's ES modules as the server serves them: one version names every module a page loads, and a server
answers only for its own version, so a page never runs modules of two releases (transport/http/web.py)."""

from __future__ import annotations

import posixpath
import re
from collections.abc import AsyncIterator
from importlib import resources

import pytest

from tests.helpers import Node, running_node

# What the page links (`src`/`href` under /console/) and what a module imports (`from './x.js'`, `import '../x.js'`).
PAGE_LINK = re.compile(r"""(?:src|href)="/console/([^"?]+)(?:\?v=([0-9a-f]+))?\"""")
MODULE_IMPORT = re.compile(r"""(?:\bfrom|\bimport)\s*\(?\s*['"](\.\.?/[^'"]+)['"]""")


@pytest.fixture
async def web(sqlite_url: str) -> AsyncIterator[Node]:
    async with running_node(sqlite_url) as running:
        yield running


def shipped() -> set[str]:
    root = resources.files("kefu").joinpath("web/console")
    found: set[str] = set()
    folders = [("", root)]
    while folders:
        prefix, folder = folders.pop()
        for entry in folder.iterdir():
            if entry.is_dir():
                folders.append((f"{prefix}{entry.name}/", entry))
            elif entry.name.endswith((".js", ".css")):
                found.add(prefix + entry.name)
    return found


async def test_every_module_the_page_reaches_is_named_by_the_page_version(web: Node) -> None:
    page = await web.http.get("/console")
    links = PAGE_LINK.findall(page.text)
    version = next(v for name, v in links if name == "console.js")
    assert version, page.text
    reached: set[str] = set()
    todo = [name for name, _ in links]
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        versioned = name != "boot.js"  # boot.js must load even for a page whose version is gone
        r = await web.http.get(f"/console/{name}", params={"v": version} if versioned else None)
        assert r.status_code == 200, (name, r.text)
        assert ("immutable" in r.headers["cache-control"]) == versioned, name
        for target in MODULE_IMPORT.findall(r.text):
            path, _, query = target.partition("?")
            assert query == f"v={version}", f"{name} imports {target} without the page's version"
            todo.append(posixpath.normpath(posixpath.join(posixpath.dirname(name), path)))
    # Every file shipped is reached from the page, so nothing is served that a page does not use.
    assert reached == shipped()
    assert {"core/state.js", "chats/chat.js", "admin/admin.js", "dashboard.js"} <= reached


async def test_a_version_from_another_release_is_not_served(web: Node) -> None:
    version = re.search(r"console\.js\?v=([0-9a-f]+)", (await web.http.get("/console")).text)
    assert version
    current = await web.http.get("/console/chats/chat.js", params={"v": version.group(1)})
    assert current.status_code == 200 and current.headers["content-type"].startswith("text/javascript")
    again = await web.http.get(
        "/console/chats/chat.js", params={"v": version.group(1)}, headers={"If-None-Match": current.headers["etag"]}
    )
    assert again.status_code == 304
    stale = await web.http.get("/console/chats/chat.js", params={"v": "0123456789abcdef"})
    assert stale.status_code == 404 and stale.json()["error"]["code"] == "not_found"
    assert "another release" in stale.json()["error"]["message"]
    unversioned = await web.http.get("/console/chats/chat.js")
    assert unversioned.status_code == 200 and "immutable" not in unversioned.headers["cache-control"]
    for missing in ("/console/index.html", "/console/core/nope.js", "/console/core", "/console/core/../../web.py"):
        r = await web.http.get(missing)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", missing
