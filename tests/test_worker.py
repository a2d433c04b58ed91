"""runner worker's folder of store configs, in-process: stores come and go with their files,
a file that does not load is left out (once logged) and the others go on."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from app.worker import Folder

CONFIG = """\
connectors:
  bigcommerce:
    store_hash: "{store}"
    access_token: "token-{store}"
    api_url: "http://127.0.0.1:9"
    lists: {{all_customers: 40}}
brevo:
  api_key: "key"
storage: "postgresql://tajo@127.0.0.1:9/tajo"
"""


def test_stores_come_and_go_with_their_files(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    folder = Folder(tmp_path)
    (tmp_path / "acme.yaml").write_text(CONFIG.format(store="acme1"))
    (tmp_path / "notes.txt").write_text("not a config")
    assert list(folder.stores()) == ["bigcommerce.state.acme1"]
    store = folder.stores()["bigcommerce.state.acme1"]
    assert store.storage == "postgresql://tajo@127.0.0.1:9/tajo"
    assert str(store.job.state_path).endswith("#bigcommerce.state.acme1")

    (tmp_path / "bravo.yml").write_text(CONFIG.format(store="bravo2"))
    assert sorted(folder.stores()) == ["bigcommerce.state.acme1", "bigcommerce.state.bravo2"]
    (tmp_path / "acme.yaml").unlink()
    assert list(folder.stores()) == ["bigcommerce.state.bravo2"]

    # A changed file is loaded again (another store in the same file).
    (tmp_path / "bravo.yml").write_text(CONFIG.format(store="bravo3"))
    stat = (tmp_path / "bravo.yml").stat()
    os.utime(tmp_path / "bravo.yml", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert list(folder.stores()) == ["bigcommerce.state.bravo3"]


def test_a_config_that_does_not_load_is_left_out_and_logged_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = Folder(tmp_path)
    (tmp_path / "good.yaml").write_text(CONFIG.format(store="good1"))
    (tmp_path / "typo.yaml").write_text(CONFIG.format(store="typo1").replace("lists", "lsts"))
    (tmp_path / "sqlite.yaml").write_text(
        CONFIG.format(store="local1").replace('storage: "postgresql://tajo@127.0.0.1:9/tajo"',
                                              ""))
    with caplog.at_level(logging.ERROR, logger="tajo.worker"):
        assert list(folder.stores()) == ["bigcommerce.state.good1"]
        assert list(folder.stores()) == ["bigcommerce.state.good1"]
    errors = [r.getMessage() for r in caplog.records if r.name == "tajo.worker"]
    assert len(errors) == 2  # once each, not once per look
    assert any("sqlite.yaml has no storage: workers share stores through PostgreSQL" in e
               for e in errors)
    assert any("typo.yaml is left out" in e and "lsts" in e for e in errors)


def test_receivers_on_postgresql_need_a_webhook_secret_of_the_config(tmp_path: Path) -> None:
    """A secret made on first use is kept in one machine's state_dir: replicas on one
    PostgreSQL spool would each make their own, so the config must give it."""
    from app import sync
    from framework.errors import ConfigError

    source = sync.sources()["bigcommerce"]
    config = tmp_path / "tajo.yaml"
    config.write_text(CONFIG.format(store="acme1"))
    with pytest.raises(ConfigError, match="webhook_secret is not set: with storage in "
                                          "PostgreSQL every receiver must verify"):
        sync.webhook_setup(source, config)
    config.write_text(CONFIG.format(store="acme1").replace(
        '    lists:', '    webhook_secret: "shared-secret-0123456789abcdef"\n    lists:'))
    assert sync.webhook_setup(source, config).config["webhook_secret"] == \
        "shared-secret-0123456789abcdef"
