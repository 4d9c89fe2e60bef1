/* The op of benchmarks/bench_step.py, in its own library (_sm3_benchmark_ops); the optimizer's
library does not contain it.

Sm3>StreamProbe is the memory-bandwidth probe: the optimizers' own access mixes (k streams read,
m streams read and written back in place), on TF's intra-op thread pool like the SM3 kernels, so
"% of the limit" compares like with like. Sm3>StreamOn runs the same bare loop over a step's own
tensors (its gradient, weights and buffer), so a step can be compared with the memory it has. (The instruction set of the SM3 loops, Sm3>KernelIsa,
is in the product library: `python -m sm3_tf` reports it.)
*/
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"

REGISTER_OP("Sm3>StreamProbe")
    .Input("memory: resource")
    .Attr("reads: int >= 0")
    .Attr("writes: int >= 1")
    .Attr("elements: int >= 1")
    .Attr("skew: int >= 0 = 0")
    .Attr("prefetch: bool = true")
    .Attr("non_temporal: bool = false")
    .Attr("adam: bool = false")
    .Attr("chunks_per_thread: int >= 0 = 0")
    .SetShapeFn(tensorflow::shape_inference::NoOutputs)
    .Doc(R"doc(
Streams `reads + writes` float32 arrays of `elements` each, laid out one after another in the
float32 variable `memory`, `skew` floats apart beyond 64-byte alignment (0: the streams sit at the
same offset modulo 2 MiB, as TF's allocator places equal-sized tensors). Per element it reads
every stream and writes the last `writes` back in place (x = 0.5 x + 0.25 * sum): 4 * (reads +
2 * writes) bytes. `prefetch` asks for the lines 4 KiB ahead (the SM3 loops: 8 KiB);
`non_temporal` stores around the caches. `adam` (1 read, 3 written streams only) does Adam's own
arithmetic on them (g; w, m, v), in PyTorch's order: its loads and stores are paced by a square
root and a division, which on some machines streams faster than the bare mix.
`chunks_per_thread` cuts the work into that many contiguous chunks per thread of the pool (1 is
PyTorch's `parallel_for` with grain 0: one chunk per thread); 0 uses the SM3 kernels' tiling
(`kTilesPerThread` per thread, at least `kMinTileElements` each).
)doc");

REGISTER_OP("Sm3>StreamOn")
    .Input("reads: N * float")
    .Input("variables: M * resource")
    .Attr("N: int >= 0")
    .Attr("M: int >= 1")
    .Attr("prefetch: bool = true")
    .SetShapeFn(tensorflow::shape_inference::NoOutputs)
    .Doc(R"doc(
Sm3>StreamProbe's bare loop over given memory: every element of the `reads` tensors is read and
every element of the float32 `variables` is read and written back in place (x = 0.5 x + 0.25 *
sum), on TF's intra-op thread pool with the SM3 kernels' tiling. With a step's own gradient (read)
and weights and buffer (variables) it streams exactly the memory that step streams, wherever TF
placed it; it changes the variables' values (benchmarks only). At most 3 of each, all of one size.
)doc");
