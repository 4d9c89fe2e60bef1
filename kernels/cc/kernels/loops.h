/* The SIMD loops of the SM3 step, compiled once per instruction set and chosen at run time.

loop_templates.h holds the arithmetic; loops_<isa>.cc instantiate it for one instruction set
each (portable C++, SSE2, AVX, AVX-512F), and `Loops<C>()` hands out the widest one this CPU runs.
The library is thus built for any x86-64 yet uses AVX-512 where present; this matters because the
step is compute-bound below AVX on a modern core (one sqrt-class operation per element).

SM3_TF_KERNEL_ISA=portable|sse2|avx|avx512 forces a set (tests compare them; an unsupported or
unknown name falls back to the automatic choice).
*/
#ifndef SM3_TF_KERNELS_LOOPS_H_
#define SM3_TF_KERNELS_LOOPS_H_

#include <cstdint>

#include "step_params.h"

namespace sm3 {

// Entry points of one instruction set; semantics in loop_templates.h.
template <typename C>
struct LoopTable {
  const char* isa;
  C (*covered_ii)(const StepParams<C>& params, const Run<C>& run, const C* cover, C row_min,
                  C* cover_max);
  void (*covered_i)(const StepParams<C>& params, const Run<C>& run, const C* cover, C row_min);
  // Element-wise covers capped by the minimum of the others; returns the maximum new acc.
  C (*diagonal)(const StepParams<C>& params, const Run<C>& run, C* acc, C cap,
                bool cap_after_update);
  C (*square_max)(const C* grad, int64_t size, C* cover_max);
};

// The loops to use now (reads SM3_TF_KERNEL_ISA; call once per op, not per run).
template <typename C>
const LoopTable<C>& Loops();

// The tables each loops_<isa>.cc provides; nullptr when not built for this architecture.
const LoopTable<float>* PortableFloatLoops();
const LoopTable<double>* PortableDoubleLoops();
const LoopTable<float>* Sse2FloatLoops();
const LoopTable<float>* AvxFloatLoops();
const LoopTable<float>* Avx512FloatLoops();

}  // namespace sm3

#endif  // SM3_TF_KERNELS_LOOPS_H_
