/* Chooses the widest loops this CPU runs, or the ones SM3_TF_KERNEL_ISA asks for. */
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include "loops.h"

namespace sm3 {
namespace {

bool CpuRuns(const char* isa) {
#if defined(__x86_64__) || defined(__i386__)
  // __builtin_cpu_supports also checks that the OS saves the AVX registers.
  if (std::strcmp(isa, "avx512") == 0) return __builtin_cpu_supports("avx512f");
  if (std::strcmp(isa, "avx") == 0) return __builtin_cpu_supports("avx");
  return true;  // sse2 and portable
#else
  return std::strcmp(isa, "portable") == 0;
#endif
}

const LoopTable<float>* BestFloatLoops() {
  for (const LoopTable<float>* table : {Avx512FloatLoops(), AvxFloatLoops(), Sse2FloatLoops()}) {
    if (table != nullptr && CpuRuns(table->isa)) return table;
  }
  return PortableFloatLoops();
}

}  // namespace

template <>
const LoopTable<float>& Loops<float>() {
  static const LoopTable<float>* const best = BestFloatLoops();
  const char* forced = std::getenv("SM3_TF_KERNEL_ISA");
  if (forced != nullptr && *forced != '\0') {
    for (const LoopTable<float>* table :
         {Avx512FloatLoops(), AvxFloatLoops(), Sse2FloatLoops(), PortableFloatLoops()}) {
      if (table != nullptr && std::strcmp(table->isa, forced) == 0 && CpuRuns(table->isa)) {
        return *table;
      }
    }
  }
  return *best;
}

template <>
const LoopTable<double>& Loops<double>() {
  return *PortableDoubleLoops();
}

}  // namespace sm3
