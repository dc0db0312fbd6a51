"""The real fixture app (Vite) through the Cloudflare flow: a one-file change sends only the changed hashes.

The one use of the real app in tests/deploy (a cold build takes ~30 s): Vite renames the
changed chunk and rewrites index.html, and exactly those files are sent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cf_api import FakeCloudflare, reference_hash
from rpc import build, deploy, options, outputs
from support import DaemonProcess, app_files, copy_fixture

from cached.deploy.names import script_name

pytestmark = pytest.mark.e2e


def test_fixture_app_first_deploy_sends_everything_then_only_what_a_one_file_change_renamed(
    deploy_daemon: DaemonProcess, cf: FakeCloudflare, tmp_path: Path,
) -> None:
    tenant, app = "fx", "orbit"
    name = script_name(tenant, app)
    files = app_files(copy_fixture(tmp_path / "app"))
    first = build(deploy_daemon.address, files, tenant=tenant, app=app).result
    first_out = outputs(deploy_daemon.address, tenant, first)
    cf.expected_files[name] = first_out
    mark = cf.mark()
    d1 = deploy(deploy_daemon.address, tenant=tenant, app=app, action_key=first.action_key).result
    first_hashes = {reference_hash(b, p) for p, b in first_out.items()}
    sent = cf.uploaded_since(mark)
    assert len(sent) == len(set(sent)) and set(sent) == first_hashes and d1.assets_uploaded == len(first_hashes)

    constants = files["src/lib/constants.ts"]
    assert b'APP_NAME = "Orbit"' in constants
    changed = {**files, "src/lib/constants.ts": constants.replace(b'APP_NAME = "Orbit"', b'APP_NAME = "Orbit Two"')}
    second = build(deploy_daemon.address, changed, tenant=tenant, app=app).result
    second_out = outputs(deploy_daemon.address, tenant, second)
    renamed = sorted(set(first_out) ^ set(second_out))
    assert any(p.endswith(".js") for p in renamed), renamed  # Vite renamed the chunk that changed
    assert second_out["index.html"] != first_out["index.html"]
    cf.expected_files[name] = second_out
    mark = cf.mark()
    d2 = deploy(deploy_daemon.address, tenant=tenant, app=app, action_key=second.action_key, opts=options(production=True)).result
    expected = {reference_hash(b, p) for p, b in second_out.items()} - first_hashes
    assert sorted(cf.uploaded_since(mark)) == sorted(expected) and d2.assets_uploaded == len(expected)
    assert 2 <= len(expected) < len(second_out)
    assert cf.violations == []
