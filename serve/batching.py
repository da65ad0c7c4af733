"""Dynamic batching without a wait: a lone request runs at once; what queued while the model was busy runs next.

Replaces `@serve.batch`, whose timer makes a request that arrives at an idle model wait for a batch not coming.
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable


class GreedyBatcher:
    """Calls `run(items) -> results` (one result per item, in a worker thread), one batch at a time.

    When the model is idle, a submitted item starts a batch at once, with whatever else is queued (up to
    max_batch_size). With wait_s > 0, a batch that is not full first waits up to wait_s for more items.
    """

    def __init__(self, run: Callable[[list], list], max_batch_size: int = 8, wait_s: float = 0.0) -> None:
        self.run, self.max_batch_size, self.wait_s = run, max_batch_size, wait_s
        self.queue: asyncio.Queue | None = None
        self.worker: asyncio.Task | None = None

    async def submit(self, item: Any) -> tuple[Any, int]:
        """(result, size of the batch it ran in) for one item."""
        if self.worker is None or self.worker.done():
            self.queue = asyncio.Queue()
            self.worker = asyncio.get_running_loop().create_task(self._loop())
        future = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((item, future))
        return await future

    async def _loop(self) -> None:
        while True:
            batch = [await self.queue.get()]
            if self.wait_s > 0 and self.queue.qsize() < self.max_batch_size - 1:
                await asyncio.sleep(self.wait_s)
            while len(batch) < self.max_batch_size and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            batch = [(item, future) for item, future in batch if not future.cancelled()]
            if batch:
                await self._run(batch)

    async def _run(self, batch: list[tuple[Any, asyncio.Future]]) -> None:
        """Run one batch in a thread (the event loop keeps queueing meanwhile); errors go to every caller."""
        try:
            results = await asyncio.to_thread(self.run, [item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"the model gave {len(results)} results for a batch of {len(batch)}")
        except Exception as exc:  # noqa: BLE001 - handed to the callers, who answer with it
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results):
            if not future.done():
                future.set_result((result, len(batch)))
