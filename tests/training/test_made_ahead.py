"""`loop.made_ahead`: a training stage's batches made ahead by a thread on its own CUDA stream (on a GPU). CUDA is
faked here (its streams and events record what they are asked); the batches, their order, errors and stopping are
what is checked."""

from __future__ import annotations

import threading

import pytest
import torch

import device_helpers
from synthbridge.training import loop


@pytest.fixture
def fake_streams(monkeypatch):
    return device_helpers.fake_streams(monkeypatch)


def test_batches_come_in_key_order_each_made_on_the_side_stream_and_waited_for(fake_streams):
    made_on = []

    def make(keys):
        made_on.append((threading.current_thread().name, torch.cuda.current_stream()))
        return torch.tensor(keys), torch.tensor(keys) * 10

    # accelerate's device on one GPU is "cuda" without an index: the thread sets the current one (an index)
    out = list(loop.made_ahead(make, ([k, k + 1] for k in range(0, 20, 2)), torch.device("cuda")))
    assert [images.tolist() for images, _ in out] == [[k, k + 1] for k in range(0, 20, 2)]
    assert all(torch.equal(labels, images * 10) for images, labels in out)
    side = {stream for _, stream in made_on}
    assert {name for name, _ in made_on} == {"synthbridge-batches"} and len(side) == 1 and fake_streams not in side
    # the training stream waits for each batch's event, recorded on the side stream after the batch was made
    assert len(fake_streams.waited) == 10 and all(event.stream in side for event in fake_streams.waited)
    # and each tensor it is handed is marked as used by the training stream (its memory is not reused early)
    recorded = [(id(tensor), stream) for tensor, stream in fake_streams.recorded]
    assert recorded == [(id(t), fake_streams) for images, labels in out for t in (images, labels)]
    assert fake_streams.devices_set == [0]


def test_an_error_making_a_batch_is_raised_in_the_training_loop(fake_streams):
    def make(keys):
        if keys == 3:
            raise ValueError("bad image 3")
        return torch.zeros(1), torch.zeros(1)

    batches = loop.made_ahead(make, iter(range(10)), torch.device("cuda", 0))
    with pytest.raises(ValueError, match="bad image 3"):
        list(batches)


def test_a_loop_that_stops_early_stops_the_thread(fake_streams):
    made = []

    def make(keys):
        made.append(keys)
        return torch.zeros(1), torch.zeros(1)

    batches = loop.made_ahead(make, iter(range(1000)), torch.device("cuda", 0), depth=2)
    next(batches)
    batches.close()
    assert not any(t.name == "synthbridge-batches" and t.is_alive() for t in threading.enumerate())
    assert len(made) <= 5  # it made only a few batches ahead, not the stream's 1,000
