import asyncio

from cached.execution.singleflight import SingleFlight


def test_identical_calls_run_once_and_share_the_result() -> None:
    async def main() -> None:
        flights: SingleFlight[int, object] = SingleFlight()
        runs = 0

        async def work(flight: object) -> int:
            nonlocal runs
            runs += 1
            await asyncio.sleep(0.05)
            return 42

        results = await asyncio.gather(*(flights.run("k", work) for _ in range(5)))
        assert [r for r, _ in results] == [42] * 5
        assert sorted(c for _, c in results) == [False, True, True, True, True]
        assert runs == 1

    asyncio.run(main())


def test_work_is_cancelled_only_when_its_last_waiter_leaves() -> None:
    async def main() -> None:
        flights: SingleFlight[int, object] = SingleFlight()
        cancelled = asyncio.Event()
        release = asyncio.Event()

        async def work(flight: object) -> int:
            try:
                await release.wait()
                return 7
            except asyncio.CancelledError:
                cancelled.set()
                raise

        a = asyncio.create_task(flights.run("k", work))
        b = asyncio.create_task(flights.run("k", work))
        await asyncio.sleep(0.01)
        a.cancel()
        await asyncio.sleep(0.01)
        assert not cancelled.is_set()
        release.set()
        assert (await b)[0] == 7

        c = asyncio.create_task(flights.run("j", work))
        release.clear()
        await asyncio.sleep(0.01)
        c.cancel()
        await asyncio.sleep(0.01)
        assert cancelled.is_set()
        assert not flights.in_flight("j")

    asyncio.run(main())
