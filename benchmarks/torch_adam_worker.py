"""PyTorch's fused CPU Adam as a bench_step contender, in a process of its own.

bench_step starts this module (`python -m benchmarks.torch_adam_worker`) and drives it over
stdin/stdout, one JSON object per line, so that PyTorch never loads into the TensorFlow process:
its OpenMP threads and TensorFlow's thread pools never share a process while the other is timed.

    {"cmd": "hello"}   ->  {"torch": "2.6.0+cpu", "threads": 2}  or  {"unavailable": "why not"}
    {"cmd": "build", "shapes": [[8192, 8192], ...]}  ->  {"params": 67108864, "huge_mib": 1024.0}
    {"cmd": "step"}                                   ->  {"wall": 0.031, "cpu": 0.060}
    {"cmd": "free"}                                   ->  {"ok": true}
    {"cmd": "quit"}                                   ->  (exits)

`torch.optim.Adam(fused=True)` updates every tensor with one fused CPU kernel (ATen's
FusedAdamKernel): it reads g, w, m, v and writes w, m, v, 28 bytes per float32 parameter.

    python -m benchmarks.torch_adam_worker --check    # says whether PyTorch is usable here
"""

import json
import statistics
import sys
import time

from benchmarks import processes
from benchmarks.huge_pages import huge_mib

NAME = "torch_adam"  # its benchmarks.roster entry
BYTES_PER_PARAM = 28


def unavailable_reason():
    """None when torch imports and has a fused CPU Adam, else why not (a sentence)."""
    try:
        import torch
    except ImportError as error:
        return (
            f"PyTorch is not installed ({error}); `make bench` installs its CPU wheel (pip "
            "install -e '.[torch-bench]' --extra-index-url https://download.pytorch.org/whl/cpu)"
        )
    try:
        parameter = torch.nn.Parameter(torch.zeros(4))
        parameter.grad = torch.ones(4)
        torch.optim.Adam([parameter], lr=1e-3, fused=True).step()
    except (RuntimeError, TypeError) as error:
        return f"torch {torch.__version__} has no fused CPU Adam ({error})"
    return None


class Worker:
    """One set of parameters, gradients and a fused Adam over them."""

    def __init__(self):
        import torch

        self.torch = torch
        self.parameters = []
        self.optimizer = None

    def build(self, shapes):
        torch = self.torch
        generator = torch.Generator().manual_seed(0)
        self.parameters = []
        for shape in shapes:
            parameter = torch.nn.Parameter(torch.randn(shape, generator=generator) * 0.02)
            parameter.grad = torch.randn(shape, generator=generator) * 1e-3
            self.parameters.append(parameter)
        self.optimizer = torch.optim.Adam(self.parameters, lr=1e-3, fused=True)
        for _ in range(2):  # state allocation, then one more warm-up step
            self.optimizer.step()
        # How much of the process sits on 2 MiB pages (huge_pages: bench_step's --huge-pages).
        return {"params": sum(p.numel() for p in self.parameters), "huge_mib": huge_mib()}

    def step(self):
        start, cpu_start = time.perf_counter(), time.process_time()
        self.optimizer.step()
        return {"wall": time.perf_counter() - start, "cpu": time.process_time() - cpu_start}

    def free(self):
        self.parameters, self.optimizer = [], None
        return {"ok": True}


def hello():
    """What the coordinator prints about this contender, or why it cannot run here."""
    reason = unavailable_reason()
    if reason is not None:
        return {"unavailable": reason}
    import torch

    return {"torch": torch.__version__, "threads": torch.get_num_threads()}


def serve(stdin=sys.stdin, stdout=sys.stdout):
    worker = None  # imports torch: only once `hello` found it usable
    for line in stdin:
        request = json.loads(line)
        command = request["cmd"]
        if command == "quit":
            return
        if command == "hello":
            reply = hello()
            if "unavailable" not in reply:
                worker = Worker()
        elif worker is None:
            reply = {"error": f"{command!r} before a successful hello"}
        elif command == "build":
            reply = worker.build([tuple(s) for s in request["shapes"]])
        elif command == "step":
            reply = worker.step()
        elif command == "free":
            reply = worker.free()
        else:
            reply = {"error": f"unknown command {command!r}"}
        stdout.write(json.dumps(reply) + "\n")
        stdout.flush()


class Client:
    """The coordinator's side: starts the worker process and times steps through it."""

    def __init__(self):
        self.process = processes.start_module("torch_adam_worker")

    def request(self, **message):
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the PyTorch worker exited (code {self.process.wait()})")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"the PyTorch worker: {reply['error']}")
        return reply

    def contender(self, shapes):
        """A contender (bench_step's interface) whose tensors live in the worker."""
        reply = self.request(cmd="build", shapes=[list(s) for s in shapes])
        return Contender(self, reply.get("huge_mib"))

    def quit(self):
        if self.process.poll() is None:
            self.process.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.process.stdin.close()
            self.process.wait(timeout=60)


class Contender:
    name = NAME
    bytes_per_param = BYTES_PER_PARAM
    probe_mix = "adam"  # stream_probe's mix doing Adam's arithmetic in PyTorch's order

    def __init__(self, client, huge_mib=None):
        self.client = client
        self.huge_mib = huge_mib  # MiB of the worker on 2 MiB pages, None where unknown
        self.wall, self.cpu = [], []

    def record(self):
        reply = self.client.request(cmd="step")
        self.wall.append(reply["wall"])
        self.cpu.append(reply["cpu"])

    def median_s(self):
        return statistics.median(self.wall)

    def peak_extra_mib(self):
        return None  # TF's allocator statistics do not see PyTorch's memory

    def close(self):
        self.client.request(cmd="free")


def start():
    """(Client, note) when PyTorch's fused Adam is usable in the worker, else (None, why not).

    The check runs in the worker, so torch never loads into the calling (TensorFlow) process.
    """
    client = Client()
    reply = client.request(cmd="hello")
    if "unavailable" in reply:
        client.quit()
        return None, f"{NAME} skipped: {reply['unavailable']}"
    return client, (
        f"{NAME}: PyTorch {reply['torch']}, Adam(fused=True), {reply['threads']} threads, "
        "in its own process"
    )


def main(argv):
    if argv == ["--check"]:
        reason = unavailable_reason()
        print(reason or "PyTorch fused CPU Adam: available")
        return 1 if reason else 0
    serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
