"""The roles that make a user a guardian have one home: GUARDIAN_ROLES in web/oneroster/steps/users.py."""

from __future__ import annotations

import pytest

import web.oneroster.steps.users
from web.oneroster import Options, import_oneroster

from oneroster_gen import generate


@pytest.mark.parametrize("version", ["1.1", "1.2"])  # the role in users.csv (1.1) or in roles.csv (1.2)
def test_the_import_takes_the_guardian_roles_from_guardian_roles(conn, tmp_path, monkeypatch, version):
    s = generate(seed=5, version=version, students=8, classes=1, items_per_class=1)
    roles = {u["sourcedId"]: u["role"] for u in s.users}
    assert {"parent", "guardian"} <= set(roles.values())
    monkeypatch.setattr(web.oneroster.steps.users, "GUARDIAN_ROLES", ("parent",))
    summary = import_oneroster(conn, s.write(tmp_path / "set"), Options(progress=False))
    assert summary.bad_rows == []
    guardians = {r[0] for r in conn.execute("select sourced_id from oneroster_guardian")}
    assert guardians == {key for key, role in roles.items() if role == "parent"}
