"""The migrations folder's README states the order Alembic runs the revisions in; it stays true."""

from __future__ import annotations

import re

from alembic.script import ScriptDirectory

from kefu.storage.migrate import MIGRATIONS, alembic_config


def test_the_readme_states_the_chain_alembic_runs() -> None:
    readme = (MIGRATIONS / "README.md").read_text(encoding="utf-8")
    stated = re.search(r"the chain is \*\*([0-9 →]+)\*\*", readme)
    assert stated is not None, "README.md no longer states the chain"
    chain = [r.revision for r in ScriptDirectory.from_config(alembic_config()).walk_revisions()][::-1]
    assert stated.group(1).split(" → ") == chain
    for revision in chain:
        assert f"| `{revision}` " in readme, f"revision {revision} has no row in README.md's table"
