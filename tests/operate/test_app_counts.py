"""Per-app hit rates are kept in the store: a new daemon on the same root reports them."""

from __future__ import annotations

from cached_client import Client
from support import WRITE_DIST, tiny_app


def test_hit_rates_survive_a_restart(make_daemon) -> None:  # type: ignore[no-untyped-def]
    files = tiny_app(WRITE_DIST, extra={"src/counts.txt": b"c"})
    first = make_daemon()
    with Client(first.address) as client:
        assert client.build(files=files, app="w1", tenant="bars").cache == "miss"
        assert client.build(files=files, app="w1", tenant="bars").cache == "hit"
        assert client.build(files=files, app="w1", tenant="bars").cache == "hit"
    assert first.stop() == 0
    second = make_daemon(first.root)
    with Client(second.address) as client:
        stats = client.stats_response()
    (app,) = [a for a in stats.app_stats if (a.tenant, a.app) == ("bars", "w1")]
    assert (app.builds, app.action_hits, round(app.hit_rate, 4)) == (3, 2, round(2 / 3, 4))
    (tenant,) = [t for t in stats.tenant_stats if t.tenant == "bars"]
    assert (tenant.builds, tenant.action_hits) == (3, 2)
