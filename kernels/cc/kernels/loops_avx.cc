/* AVX loops (8 float lanes). Compiled with -mavx by the build; chosen only on CPUs with AVX. */
#include "loops.h"

#if defined(__AVX__)
#include <immintrin.h>

#include "loop_templates.h"

namespace sm3 {
namespace {

struct AvxFloat {
  using Scalar = float;
  using V = __m256;
  static constexpr int kWidth = 8;
  static float Infinity() { return __builtin_inff(); }
  static V Load(const float* p) { return _mm256_loadu_ps(p); }
  static void Store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V Set(float x) { return _mm256_set1_ps(x); }
  static V Add(V a, V b) { return _mm256_add_ps(a, b); }
  static V Sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V Mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V IsNan(V a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
  // NaN wins from both sides (see loops_sse2.cc).
  static V Min(V a, V b) { return _mm256_or_ps(_mm256_min_ps(a, b), IsNan(a)); }
  static V Max(V a, V b) { return _mm256_or_ps(_mm256_max_ps(a, b), IsNan(a)); }
  static float ReduceMax(V v) {
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, v);
    float best = lanes[0];
    for (int i = 1; i < 8; ++i) best = (best != best || best > lanes[i]) ? best : lanes[i];
    return best;
  }
  // g * rsqrt(d): rsqrtps refined by one Newton step (Eigen's prsqrt); 0 where d == 0.
  static V Precondition(V g, V d) {
    const V approx = _mm256_rsqrt_ps(d);
    const V h = Add(Mul(Mul(d, approx), approx), Set(-1.0f));
    V inverse = Add(Mul(Mul(approx, Set(-0.5f)), h), approx);
    inverse = _mm256_blendv_ps(inverse, approx, IsNan(inverse));  // d = 0 or inf
    return _mm256_and_ps(_mm256_cmp_ps(d, _mm256_setzero_ps(), _CMP_NEQ_UQ), Mul(g, inverse));
  }
};

}  // namespace

const LoopTable<float>* AvxFloatLoops() {
  static const LoopTable<float> table = {"avx", &loops::CoveredII<AvxFloat>,
                                         &loops::CoveredI<AvxFloat>, &loops::Diagonal<AvxFloat>,
                                         &loops::SquareMax<AvxFloat>};
  return &table;
}

}  // namespace sm3

#else  // built without -mavx (not x86, or a compiler that lacks it)

const sm3::LoopTable<float>* sm3::AvxFloatLoops() { return nullptr; }

#endif
