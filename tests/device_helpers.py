"""A CUDA device on a CPU-only machine, for tests of device placement.

`fake_cuda(monkeypatch)` makes accelerate pick `cuda:0`, and every tensor sent to or made on a CUDA device becomes
a fake tensor (torch's FakeTensorMode): it carries its device and shape but no data. Operations on it check that
their operands share a device exactly as a GPU's kernels do ("Expected all tensors to be on the same device ..."),
and compute nothing; host work that never touches the device (a DataLoader's seed, numpy) runs as usual. So a model
or tensor left on the CPU while accelerate's batches are on the GPU fails here as it would on a GPU machine.

What a fake tensor cannot do is hand a value to Python (`.item()`, `float(t)`): code under test stops there with
`DataDependentOutputException` (READ_BACK). A test expects it where the work first reads a result back, and
checks (`count_forwards`) that the model ran before it: everything up to there ran on one device.
"""

from __future__ import annotations

import contextlib
import threading

import torch
from torch._subclasses.fake_tensor import DataDependentOutputException, FakeTensor, FakeTensorMode
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

CUDA = torch.device("cuda", 0)
READ_BACK = DataDependentOutputException  # what code under fake_cuda raises where it reads a value back to Python


def count_forwards(model: torch.nn.Module) -> list[int]:
    """A one-item list counting `model`'s forward calls (to show a test got as far as running the model)."""
    calls = [0]
    model.register_forward_hook(lambda module, args, output: calls.__setitem__(0, calls[0] + 1))
    return calls


@contextlib.contextmanager
def fake_cuda(monkeypatch):
    """accelerate's device is cuda:0 (its Accelerator and PartialState), the CUDA queries a run makes answer as a
    GPU's would (a large free memory, synchronize a no-op), and tensors are fake (see the module's notes)."""
    import accelerate

    accelerate.PartialState()  # the process state, made as this machine makes it, before it answers cuda
    cuda = property(lambda self: CUDA, lambda self, value: None)
    monkeypatch.setattr(accelerate.Accelerator, "device", cuda)
    monkeypatch.setattr(accelerate.PartialState, "device", cuda, raising=False)  # an instance attribute there
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (80 * 2**30, 80 * 2**30))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 0)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 0)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "manual_seed", lambda seed: None)
    fake_streams(monkeypatch)
    # torch's modes hold for the thread that enters them: the batches `made_ahead` makes on its own thread are
    # made here on this one (its hand-over between threads and streams: tests/training/test_made_ahead.py)
    monkeypatch.setattr("synthbridge.training.loop.made_ahead", lambda make, keys, device, depth=2: map(make, keys))
    with _DeviceWork():
        yield


class FakeEvent:
    """A CUDA event that remembers the stream it was recorded on."""

    def record(self, stream=None):
        self.stream = stream if stream is not None else torch.cuda.current_stream()


class FakeStream:
    """A CUDA stream that remembers the events it was told to wait for."""

    def __init__(self, device=None):
        self.waited = []

    def wait_event(self, event):
        self.waited.append(event)


def fake_streams(monkeypatch) -> FakeStream:
    """torch.cuda's streams and events as recorders (for code that hands work between streams); returns the
    default stream, which records: `devices_set` (torch.cuda.set_device's arguments), `recorded` ((tensor, stream)
    of every record_stream call). `torch.cuda.stream(s)` makes `s` the current stream of the thread that enters it,
    and a FakeEvent records the stream current where it is recorded when given none."""
    default = FakeStream()
    default.devices_set, default.recorded = [], []
    local = threading.local()
    current = lambda device=None: getattr(local, "stream", default)

    @contextlib.contextmanager
    def stream(s):
        before = current()
        local.stream = s
        try:
            yield
        finally:
            local.stream = before

    monkeypatch.setattr(torch.cuda, "Stream", FakeStream)
    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: default.devices_set.append(device))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "stream", stream)
    monkeypatch.setattr(torch.cuda, "current_stream", current)
    monkeypatch.setattr(torch.Tensor, "record_stream", lambda self, s: default.recorded.append((self, s)))
    return default


def _on_cuda(value) -> bool:
    if isinstance(value, FakeTensor):
        return True
    if isinstance(value, torch.device):
        return value.type == "cuda"
    return isinstance(value, str) and value.startswith("cuda")


class _DeviceWork(TorchFunctionMode):
    """Runs a torch call under a FakeTensorMode when it involves CUDA: a fake tensor among its inputs, or a CUDA
    device among its arguments (`t.to("cuda")`, `torch.empty(..., device=cuda)`); every other call runs as usual."""

    def __init__(self):
        super().__init__()
        self.fake = FakeTensorMode(allow_non_fake_inputs=True)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if any(_on_cuda(leaf) for leaf in tree_leaves((args, kwargs))):
            with self.fake:
                return func(*args, **kwargs)
        return func(*args, **kwargs)
