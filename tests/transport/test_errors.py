"""A failure on kefu's side answers `internal_error`, built from the one error tree (kefu.errors.InternalError):
HTTP 500 in the contract's shape, and an `error` frame with the frame's `ref` on a socket that stays open."""

from __future__ import annotations

import sqlalchemy as sa

from kefu import errors
from tests.helpers import Node


async def test_a_failure_of_ours_is_internal_error_over_http_and_websocket(node: Node) -> None:
    app = await node.create_app()
    visitor = await node.visitor(app, "U1")
    sid = (await visitor.open_chat())["session_id"]
    async with node.services.db.transaction() as tx:  # the database loses a table from under the running node
        await tx.execute(sa.text("ALTER TABLE messages RENAME TO messages_gone"))
    expected = errors.InternalError()

    await visitor.send("send", session_id=sid, client_msg_id="c1", msg_type="text", content="hello", ref="r1")
    frame = await visitor.expect("error", ref="r1")
    assert frame["code"] == expected.code == "internal_error" and frame["message"] == expected.message
    await visitor.ping()  # the socket stays open

    r = await node.http.get(f"/api/v1/conversations/{sid}", headers={"Authorization": f"Bearer {app.api_key}"})
    assert r.status_code == expected.status == 500
    assert r.json() == {"error": {"code": "internal_error", "message": expected.message}}
