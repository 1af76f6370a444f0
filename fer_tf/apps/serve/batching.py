"""Dynamic batching: requests that arrive together run as one call of the model.

Like TF Serving's batching (`max_batch_size`, `batch_timeout_micros`): the first request opens a
batch; requests arriving within `max_wait` seconds join it until it holds `max_batch_size` rows;
then the whole batch runs once and each request gets its own rows of every output back. Requests
join only if their inputs have the same names, dtypes and per-row shapes. A request larger than
`max_batch_size` runs on its own. While a batch runs, the next one fills — so under load batches
grow without any waiting at all.

One failing request must not fail the others it was batched with (a corrupt image in one of 32
requests): when a batch fails, its requests are run again one by one, and only the bad one fails.
"""
import queue
import threading
import time
from concurrent.futures import Future

import numpy as np


class _Request:
    __slots__ = ("inputs", "rows", "key", "future")

    def __init__(self, inputs):
        self.inputs = inputs
        self.rows = len(next(iter(inputs.values()))) if inputs else 0
        self.key = tuple(sorted((name, value.dtype.str, value.shape[1:])
                                for name, value in inputs.items()))
        self.future = Future()


class Batcher:
    """run(inputs {name: array [rows, ...]}) -> {name: array [rows, ...]}, called from one
    background thread on merged requests. `submit` is thread-safe and returns a Future."""

    def __init__(self, run, max_batch_size=32, max_wait=0.002, name="batcher", allowed_sizes=None):
        self.run, self.max_batch_size, self.max_wait = run, max_batch_size, max_wait
        # TF Serving's allowed_batch_sizes: a merged batch is padded (its last row repeated) up to
        # the next allowed size, so the model sees a few shapes only — each new input shape
        # costs oneDNN a kernel build (about 10 ms for `vgg`) on its first call.
        self.allowed_sizes = sorted(allowed_sizes or ())
        self._queue = queue.Queue()
        self._carry = None          # a request that could not join the last batch
        self.batches = self.rows = 0        # counters, for the bench and the tests
        self.busy = 0.0                     # seconds spent running the model
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, inputs):
        request = _Request(inputs)
        self._queue.put(request)
        return request.future

    def __call__(self, inputs):
        """Submit and wait: the blocking form, for callers on worker threads."""
        return self.submit(inputs).result()

    def close(self):
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _next(self, timeout=None):
        if self._carry is not None:
            request, self._carry = self._carry, None
            return request
        return self._queue.get(timeout=timeout) if timeout is not None else self._queue.get()

    def _loop(self):
        while True:
            first = self._next()
            if first is None:
                return
            batch, rows = [first], first.rows
            deadline = time.monotonic() + self.max_wait
            while rows < self.max_batch_size:
                try:
                    request = self._next(max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if request is None:
                    self._queue.put(None)          # stop after this batch
                    break
                if request.key != first.key or rows + request.rows > self.max_batch_size:
                    self._carry = request
                    break
                batch.append(request)
                rows += request.rows
            self._run(batch)

    def _run(self, batch):
        start = time.perf_counter()
        try:
            self._run_batch(batch)
        finally:
            self.busy += time.perf_counter() - start

    def _run_batch(self, batch):
        self.batches += 1
        total = sum(r.rows for r in batch)
        self.rows += total
        padded = next((size for size in self.allowed_sizes if size >= total), total)
        merged = {}
        for name in batch[0].inputs:
            parts = [r.inputs[name] for r in batch]
            if padded > total:
                parts.append(np.repeat(parts[-1][-1:], padded - total, axis=0))
            merged[name] = np.concatenate(parts)
        try:
            outputs = self.run(merged)
        except Exception as e:  # noqa: BLE001 — handed to the request, or find the one that failed
            if len(batch) == 1:
                batch[0].future.set_exception(e)
            else:
                for request in batch:
                    self._run_batch([request])
            return
        if not all(np.ndim(v) and len(v) == padded for v in outputs.values()):
            # An output without a batch dimension cannot be split between requests.
            if len(batch) == 1:
                batch[0].future.set_result(outputs)
            else:
                for request in batch:
                    self._run_batch([request])
            return
        start = 0
        for request in batch:
            stop = start + request.rows
            request.future.set_result({k: v[start:stop] for k, v in outputs.items()})
            start = stop
