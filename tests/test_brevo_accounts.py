"""Accounts of several platforms in one Brevo ledger (connectors/brevo/ledger.py), in-process:
the model keys a record by (platform, account), so two platforms' stores of the same name must
not share ids in Brevo; an account keeps the key it was given, and a ledger of an earlier
version keeps its accounts' keys."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from connectors.brevo.ledger import Ledger


def test_the_first_comer_keeps_its_name_and_the_other_platform_is_qualified(
        storage: Callable[[str], str]) -> None:
    ledger = Ledger(storage("brevo"))  # SQLite or PostgreSQL
    assert ledger.account_key("bigcommerce", "abc123") == "abc123"
    assert ledger.account_key("marketbox", "abc123") == "marketbox-abc123"
    assert ledger.account_key("marketbox", "shop-2") == "shop-2"
    assert ledger.account_key("bigcommerce", "abc123") == "abc123"
    ledger.commit()
    ledger.close()
    again = Ledger(storage("brevo"))  # kept: ids in Brevo never change
    assert again.account_key("marketbox", "abc123") == "marketbox-abc123"
    assert again.account_key("bigcommerce", "abc123") == "abc123"
    again.close()


def test_a_key_given_in_a_run_that_did_not_commit_is_given_again(
        storage: Callable[[str], str]) -> None:
    ledger = Ledger(storage("brevo"))
    ledger.account_key("marketbox", "abc123")
    ledger.db.rollback()  # the run died before its records were committed
    ledger.keys.clear()
    assert ledger.account_key("bigcommerce", "abc123") == "abc123"
    ledger.close()


def test_an_earlier_ledgers_accounts_keep_their_keys(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "brevo.db")
    ledger.db.execute("INSERT INTO customers (store, id, email) VALUES ('abc123', 1, 'a@x.io')")
    ledger.db.execute("DELETE FROM account_keys")
    ledger.db.execute("DELETE FROM meta WHERE key = 'account_keys'")  # as before this version
    ledger.commit()
    ledger.close()
    upgraded = Ledger(tmp_path / "brevo.db")
    assert upgraded.account_key("bigcommerce", "abc123") == "abc123"  # adopted, not renamed
    assert upgraded.account_key("marketbox", "abc123") == "marketbox-abc123"
    upgraded.close()
    rows = sqlite3.connect(tmp_path / "brevo.db").execute(
        "SELECT platform, account, key FROM account_keys ORDER BY key").fetchall()
    assert rows == [("bigcommerce", "abc123", "abc123"),
                    ("marketbox", "abc123", "marketbox-abc123")]
