"""The demo deployment `kefu demo` serves: one app with agents and groups, made once and reused."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kefu.bot import Bot
from kefu.bot.articles import parse_articles
from kefu.domain.clock import Clock
from kefu.services.admin import DEMO_APP_MARKER, AdminService
from kefu.services.kb import KbArticleSource, KbService
from kefu.storage import Database
from kefu.storage import apps as app_store

DEMO_KB = Path(__file__).resolve().parent.parent / "data" / "demo_kb.json"  # a Chinese e-commerce FAQ
DEMO_PASSWORD = "kefu-demo-2026"  # noqa: S105 - the published password of the local demo only
DEMO_ADMIN = "admin@demo.kefu"
DEMO_AGENTS = (
    ("wang@demo.kefu", "王芳 Wang Fang", ("default", "vip"), 3),
    ("li@demo.kefu", "李雷 Li Lei", ("default", "aftersales"), 1),
)


@dataclass(frozen=True, slots=True)
class DemoApp:
    app_id: str
    secret: str
    api_key: str | None  # shown only when the app is first made
    logins: tuple[tuple[str, str], ...]


async def ensure_demo_app(db: Database, clock: Clock, first_run: Callable[[], None] | None = None) -> DemoApp:
    """The demo app, made on first run with its admin and agents; the same one on every later run.

    On the first run the bot's vectors of the demo knowledge base are computed and stored before the node starts
    (`first_run` is called before that slow part), so the node is ready, and the shop answers, seconds after.
    """
    admin = AdminService(db, clock)
    kb_bot = Bot(KbArticleSource(db))
    logins = ((DEMO_ADMIN, DEMO_PASSWORD), *((email, DEMO_PASSWORD) for email, *_ in DEMO_AGENTS))
    app = await admin.demo_app()
    if app is not None:
        return DemoApp(app.app_id, app.secret, None, logins)
    if first_run is not None:
        first_run()
    created = await admin.create_app("Demo shop 演示商城", DEMO_ADMIN, DEMO_PASSWORD)
    for email, name, groups, level in DEMO_AGENTS:
        await admin.add_agent(created.app_id, email, DEMO_PASSWORD, name, groups, level, 5)
    articles = parse_articles(DEMO_KB.read_bytes(), DEMO_KB.name)
    await KbService(db, clock, kb_bot).import_articles(created.app_id, articles)
    await kb_bot.index(created.app_id, fresh=True)  # encodes and stores the vectors the node then reads
    async with db.transaction() as tx:
        await app_store.set_marker(tx, DEMO_APP_MARKER, created.app_id)
    return DemoApp(created.app_id, created.secret, created.api_key, logins)
