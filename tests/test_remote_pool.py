"""The pool's sharing, re-queueing and cancelling, with stand-in servers (real ones: test_remote_server.py)."""

from __future__ import annotations

import threading
import time

import pytest

from asset_studio.core.backend import Cancelled, ImageReady, Progress
from asset_studio.errors import UserError
from asset_studio.remote.client import JobError, ServerError
from asset_studio.remote.pool import run_pool
from jobs import make_job


class StandIn:
    """A server that takes SECONDS per image, and fails (raising ERROR) at its FAIL_AT-th image."""

    def __init__(self, url, seconds=0.01, fail_at=None, error=ServerError):
        self.url, self.seconds, self.fail_at, self.error = url, seconds, fail_at, error
        self.made = []

    def run_image(self, job, index, count, should_cancel=None):
        if self.fail_at is not None and len(self.made) == self.fail_at:
            yield Progress(step=1, total=2, image_index=index, image_count=count)
            time.sleep(self.seconds)
            raise self.error(f"{self.url} broke")
        time.sleep(self.seconds)
        if should_cancel and should_cancel():
            yield Cancelled()
            return
        self.made.append(index)
        done = job.for_seed(job.sampling.seed)
        done.made_by = f"comfyui {self.url}"
        yield ImageReady(image=None, job=done, index=index, seed=job.sampling.seed)


def images(events):
    return [e for e in events if isinstance(e, ImageReady)]


def test_a_batch_is_shared_and_the_faster_server_makes_more():
    fast, slow = StandIn("fast", 0.01), StandIn("slow", 0.2)
    made = images(run_pool(make_job(seed=10, batch_count=8), [fast, slow]))
    assert sorted(e.index for e in made) == list(range(8))
    assert sorted(e.seed for e in made) == list(range(10, 18))
    assert len(fast.made) > len(slow.made) >= 1
    assert {e.job.made_by for e in made} == {"comfyui fast", "comfyui slow"}
    assert all(e.job.sampling.seed == e.seed and e.job.sampling.count == 1 for e in made)


def test_an_image_a_failing_server_had_is_made_by_another():
    broken, good = StandIn("broken", fail_at=0), StandIn("good", 0.05)
    made = images(run_pool(make_job(batch_count=4), [broken, good]))
    assert sorted(e.index for e in made) == [0, 1, 2, 3]
    assert {e.job.made_by for e in made} == {"comfyui good"}


def test_a_server_that_ran_out_of_images_waits_for_one_that_may_come_back():
    # "slow" holds an image until long after "fast" has made all the others, then fails.
    slow, fast = StandIn("slow", 0.5, fail_at=0), StandIn("fast", 0.01)
    made = images(run_pool(make_job(batch_count=3), [slow, fast]))
    assert sorted(e.index for e in made) == [0, 1, 2]
    assert sorted(fast.made) == [0, 1, 2] and slow.made == []


def test_a_job_the_server_refuses_ends_the_batch_with_its_sentence():
    refusing, good = StandIn("refusing", fail_at=0, error=JobError), StandIn("good", 0.2)
    with pytest.raises(JobError, match="refusing broke"):
        list(run_pool(make_job(batch_count=6), [refusing, good]))
    assert len(good.made) <= 1  # no new image once the batch failed


def test_when_every_server_fails_the_sentence_says_so():
    with pytest.raises(UserError, match=r"Every ComfyUI server failed .*4 image\(s\) left") as caught:
        list(run_pool(make_job(batch_count=4), [StandIn("a", fail_at=0), StandIn("b", fail_at=0)]))
    assert "a broke" in str(caught.value) and "b broke" in str(caught.value)


def test_cancel_stops_the_pool_with_the_images_made_so_far():
    servers = [StandIn("a", 0.05), StandIn("b", 0.05)]
    made = []
    stop = threading.Event()
    events = []
    for event in run_pool(make_job(batch_count=50), servers, stop.is_set):
        events.append(event)
        if isinstance(event, ImageReady):
            made.append(event)
            if len(made) == 2:
                stop.set()
    assert isinstance(events[-1], Cancelled)
    assert 2 <= len(made) < 50
