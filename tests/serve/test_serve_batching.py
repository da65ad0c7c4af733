"""The greedy batcher of the model replicas: a lone item runs at once; items that queue while a batch runs go
together into the next one, each with its own result."""
import asyncio
import threading
import time

from serve.batching import GreedyBatcher


def test_a_lone_item_runs_at_once_and_queued_items_share_the_next_batch():
    release = threading.Event()
    batches = []

    def run(items):
        batches.append(list(items))
        if len(batches) == 1:
            release.wait(5)  # the model is busy with the first batch while the others queue
        return [item * 10 for item in items]

    async def scenario():
        batcher = GreedyBatcher(run, max_batch_size=3)
        start = time.perf_counter()
        first = asyncio.create_task(batcher.submit(0))
        await asyncio.sleep(0.05)
        assert batches == [[0]]  # started without waiting for company
        rest = [asyncio.create_task(batcher.submit(i)) for i in range(1, 6)]
        await asyncio.sleep(0.05)
        release.set()
        results = await asyncio.gather(first, *rest)
        return results, time.perf_counter() - start

    results, seconds = asyncio.run(scenario())
    assert batches == [[0], [1, 2, 3], [4, 5]]
    assert results == [(0, 1), (10, 3), (20, 3), (30, 3), (40, 2), (50, 2)]
    assert seconds < 2


def test_wait_collects_a_fuller_batch_and_errors_reach_every_caller():
    def run(items):
        if -1 in items:
            raise ValueError("bad item")
        return items

    async def scenario():
        batcher = GreedyBatcher(run, max_batch_size=4, wait_s=0.1)
        first = asyncio.create_task(batcher.submit(1))
        await asyncio.sleep(0.02)
        together = await asyncio.gather(first, batcher.submit(2))
        failed = await asyncio.gather(batcher.submit(-1), batcher.submit(3), return_exceptions=True)
        return together, failed, await batcher.submit(4)

    together, failed, after = asyncio.run(scenario())
    assert together == [(1, 2), (2, 2)]
    assert all(isinstance(f, ValueError) for f in failed)
    assert after == (4, 1)


def test_a_batch_with_missing_results_is_an_error_not_a_hang():
    async def scenario():
        batcher = GreedyBatcher(lambda items: items[:1], max_batch_size=2, wait_s=0.05)
        return await asyncio.wait_for(asyncio.gather(batcher.submit(1), batcher.submit(2), return_exceptions=True), 5)

    results = asyncio.run(scenario())
    assert all(isinstance(r, RuntimeError) and "1 results for a batch of 2" in str(r) for r in results)
