"""The memory-bandwidth probe of bench_step: the optimizers' own access mixes, as fast as the
machine streams them.

Each `Mix` runs the benchmark op `Sm3>StreamProbe` (the benchmarks' own library,
`kernel_loader.benchmark_ops()`, built on first use) on TF's intra-op thread pool, the threads
the SM3 kernels use: every element of `reads` read-only streams and `writes` read-written streams
is loaded, and the written ones are stored back in place; that is 4 * (reads + 2 * writes) bytes
per element, counting every byte once as the optimizers' figures do (an in-place store needs no
extra read). The default mixes are the optimizers' own:

  r1w1  12 B  g read, w read and written           (SM3 without momentum)
  r1w2  20 B  g read, w and buf read and written   (SM3 with a float32 buffer)
  r1w3  28 B  g read, w, m and v read and written  (Adam)
  r3w1  20 B  Adam's four read streams, one of them written back: against r1w3 it shows what
              the in-place stores cost; on this VM little (r1w3 took 11-18% longer, a stored
              stream costing about 0.3 of a read one), so a step's time follows the
              bytes it reads (SM3: 12, 10 or 8 per parameter; Adam 16)

  adam  28 B  r1w3 doing Adam's own arithmetic in PyTorch's load/store order (with and without
              prefetch): on this 2-vCPU VM the square root and division pace the streams and
              reach ~40% more than the bare r1w3 loop, as PyTorch's fused Adam does

each with the streams at one offset modulo 2 MiB (how TF's allocator places equal-sized tensors,
`skew` 0) and skewed by 4160 bytes, with 4 KiB software prefetch (the SM3 loops: 8 KiB) and
the SM3 kernels' tiling (4 tiles per thread); r1w1, r1w2, r1w3 and `adam` also without prefetch
(on 2 MiB pages the hardware prefetchers alone can stream faster), and `adam` once in PyTorch's
own structure (`+1chunk`: one contiguous chunk per thread, no prefetch). The
limit that bench_step reports percentages against is the fastest of them in the same run;
non-temporal stores (`--probe-non-temporal`) did not help on the machines measured, the in-place
streams are read anyway (docs/kernels_benchmark.md).
"""

import dataclasses
import statistics
import time

import tensorflow as tf

from sm3_tf import kernel_loader

ELEMENTS = 32 * 1024 * 1024  # 128 MiB per stream: far beyond any cache
SKEWED = 1040  # floats: 4160 bytes, off the 2 MiB (and 4 KiB) congruence of equal-sized tensors


@dataclasses.dataclass
class Mix:
    reads: int
    writes: int
    skew: int = 0
    non_temporal: bool = False
    adam: bool = False  # Adam's arithmetic on g; w, m, v (reads 1, writes 3)
    prefetch: bool = True
    chunks_per_thread: int = 0  # 0: the SM3 kernels' tiling; 1: PyTorch's, one chunk per thread

    @property
    def name(self):
        name = "adam" if self.adam else f"r{self.reads}w{self.writes}"
        if self.skew:
            name += "+skew"
        if self.non_temporal:
            name += "+nt"
        if not self.prefetch:
            name += "-prefetch"
        if self.chunks_per_thread:
            name += f"+{self.chunks_per_thread}chunk"
        return name

    @property
    def bytes_per_element(self):
        return 4 * (self.reads + 2 * self.writes)


def default_mixes(non_temporal=False):
    mixes = [Mix(1, w, skew) for w in (1, 2, 3) for skew in (0, SKEWED)]
    # Without software prefetch: on 2 MiB pages (bench_step's default) the hardware prefetchers
    # alone streamed the bare loops up to 40% faster on this VM (docs/kernels_benchmark.md).
    mixes += [Mix(1, w, prefetch=False) for w in (1, 2, 3)]
    mixes.append(Mix(3, 1, SKEWED))
    mixes += [Mix(1, 3, skew, adam=True, prefetch=p) for skew in (0, SKEWED) for p in (True, False)]
    # PyTorch's own structure: no software prefetch, one contiguous chunk per thread.
    mixes.append(Mix(1, 3, SKEWED, adam=True, prefetch=False, chunks_per_thread=1))
    if non_temporal:
        mixes += [Mix(1, w, SKEWED, non_temporal=True) for w in (1, 2, 3)]
    return mixes


class StreamProbe:
    """All mixes over one float32 variable big enough for the largest; timed one run at a time."""

    def __init__(self, mixes, elements=ELEMENTS):
        ops = kernel_loader.benchmark_ops()
        self.mixes = mixes
        self.elements = elements
        streams = max(m.reads + m.writes for m in mixes)
        stride = (elements + max(m.skew for m in mixes) + 15) // 16 * 16
        self.memory = tf.Variable(tf.random.uniform([streams * stride + 16]))
        self.steps = {mix.name: tf.function(self._step_of(ops, mix)) for mix in mixes}
        self.times = {mix.name: [] for mix in mixes}
        for mix in mixes:
            self.run(mix)  # trace
        self.reset()

    def _step_of(self, ops, mix):
        def step():
            ops.sm3_stream_probe(
                memory=self.memory.handle,
                reads=mix.reads,
                writes=mix.writes,
                elements=self.elements,
                skew=mix.skew,
                prefetch=mix.prefetch,
                non_temporal=mix.non_temporal,
                adam=mix.adam,
                chunks_per_thread=mix.chunks_per_thread,
            )

        return step

    def run(self, mix):
        start = time.perf_counter()
        self.steps[mix.name]()
        return time.perf_counter() - start

    def reset(self):
        self.times = {mix.name: [] for mix in self.mixes}

    def record(self, mix):
        self.times[mix.name].append(self.run(mix))

    def ns_per_element(self):
        """{mix name: nanoseconds per element of each stream, from its median time}."""
        return {
            mix.name: statistics.median(t) / self.elements * 1e9
            for mix in self.mixes
            if (t := self.times[mix.name])
        }

    def bandwidths(self):
        """{mix name: GB/s from its median time} for the mixes timed since the last reset."""
        return {
            mix.name: mix.bytes_per_element * self.elements / statistics.median(t) / 1e9
            for mix in self.mixes
            if (t := self.times[mix.name])
        }
