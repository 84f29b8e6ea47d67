"""Several ComfyUI servers sharing one batch: each server makes one image at a time.

ComfyUI runs one prompt at a time, so a server that is idle is the least busy one: a thread per
server takes the next image off one shared queue as soon as its last one is done, and faster
servers simply take more. A server that fails or disappears mid-image is dropped for the rest of
the batch and the image goes back to the front of the queue for another; a job the server refused
(a node error, a bad input) would fail anywhere, so it ends the batch with that sentence.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from typing import Callable, Iterator

from asset_studio.core.backend import Cancelled
from asset_studio.core.job import GenerationJob
from asset_studio.errors import UserError
from asset_studio.remote.client import ComfyClient, ServerError

_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


def run_pool(job: GenerationJob, clients: list[ComfyClient],
             should_cancel: Callable[[], bool] | None = None) -> Iterator:
    """Events of every image of JOB made on CLIENTS: Progress and ImageReady (in the order the
    images finish), then Cancelled when should_cancel() said so. Raises the first error that would
    fail on any server, or a UserError when every server has failed."""
    seeds = job.image_seeds()
    todo = deque(enumerate(seeds))
    changed = threading.Condition()  # todo and in_flight, shared by the servers' threads
    events: queue.Queue = queue.Queue()
    stop = threading.Event()
    failures: list[str] = []
    asked = should_cancel or (lambda: False)
    cancel_asked = threading.Event()

    def cancelled() -> bool:
        if not stop.is_set() and asked():
            cancel_asked.set()
            stop.set()
        return stop.is_set()

    in_flight = 0

    def take():
        """The next image; while others are in flight on other servers, wait: one may come back."""
        nonlocal in_flight
        with changed:
            while not todo and in_flight and not cancelled():
                changed.wait(0.25)
            if not todo or cancelled():
                return None
            in_flight += 1
            return todo.popleft()

    def settle(item, error: ServerError | None) -> None:
        nonlocal in_flight
        with changed:
            in_flight -= 1
            if error is not None:
                todo.appendleft(item)  # another server makes it
                failures.append(str(error))
            changed.notify_all()

    def work(client: ComfyClient) -> None:
        try:
            while (item := take()) is not None:
                index, seed = item
                try:
                    for event in client.run_image(job.for_seed(seed, index), index, len(seeds), cancelled):
                        events.put(event)
                except ServerError as exc:
                    settle(item, exc)
                    return
                except BaseException:
                    settle(item, None)
                    raise
                settle(item, None)
        except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
            stop.set()
            events.put(_Failure(exc))
        finally:
            events.put(_DONE)

    workers = [threading.Thread(target=work, args=(c,), name=f"comfyui {c.url}", daemon=True) for c in clients]
    for w in workers:
        w.start()
    running, error, was_cancelled = len(workers), None, False
    try:
        while running:
            event = events.get()
            if event is _DONE:
                running -= 1
            elif isinstance(event, _Failure):
                error = error or event.exc
            elif isinstance(event, Cancelled):
                was_cancelled = True
            elif error is None:
                yield event
    finally:
        stop.set()  # the caller stopped listening or we are done: no worker takes another image
        for w in workers:
            w.join(timeout=5)
    if error is not None:
        raise error
    if was_cancelled or cancel_asked.is_set():
        yield Cancelled()
        return
    if todo:
        reasons = " ".join(dict.fromkeys(failures))
        raise UserError(f"Every ComfyUI server failed before the batch was done ({len(todo)} image(s) left). {reasons}")

