/* SSE2 loops (4 float lanes): every x86-64 CPU has them; built with the baseline flags. */
#include "loops.h"

#if defined(__x86_64__) || defined(__i386__)
#include <emmintrin.h>

#include "loop_templates.h"

namespace sm3 {
namespace {

struct Sse2Float {
  using Scalar = float;
  using V = __m128;
  static constexpr int kWidth = 4;
  static constexpr bool kSimdBfloat16 = false;  // loops::Bfloat16Bits lane by lane
  static float Infinity() { return __builtin_inff(); }
  static V Load(const float* p) { return _mm_loadu_ps(p); }
  static void Store(float* p, V v) { _mm_storeu_ps(p, v); }
  static V Set(float x) { return _mm_set1_ps(x); }
  static V Add(V a, V b) { return _mm_add_ps(a, b); }
  static V Sub(V a, V b) { return _mm_sub_ps(a, b); }
  static V Mul(V a, V b) { return _mm_mul_ps(a, b); }
  static V MulAdd(V a, V b, V c) { return Add(Mul(a, b), c); }
  static V NegMulAdd(V a, V b, V c) { return Sub(c, Mul(a, b)); }
  static V Select(V mask, V a, V b) { return _mm_or_ps(_mm_and_ps(mask, a), _mm_andnot_ps(mask, b)); }
  // minps/maxps return the second operand when either is NaN; OR-ing in the NaN mask of the
  // first makes NaN win from both sides (an all-ones lane is a NaN).
  static V Min(V a, V b) { return _mm_or_ps(_mm_min_ps(a, b), _mm_cmpunord_ps(a, a)); }
  static V MinOrSecond(V a, V b) { return _mm_min_ps(a, b); }  // b when either is NaN
  static V Max(V a, V b) { return _mm_or_ps(_mm_max_ps(a, b), _mm_cmpunord_ps(a, a)); }
  static float ReduceMax(V v) {
    alignas(16) float lanes[4];
    _mm_store_ps(lanes, v);
    float best = lanes[0];
    for (int i = 1; i < 4; ++i) best = (best != best || best > lanes[i]) ? best : lanes[i];
    return best;
  }
  // g * rsqrt(d): rsqrtps refined by one Newton step (Eigen's prsqrt); 0 where d == 0, as
  // tf.math.divide_no_nan(g, sqrt(d)); NaN stays NaN.
  static V Precondition(V g, V d) {
    const V approx = _mm_rsqrt_ps(d);
    const V h = Add(Mul(Mul(d, approx), approx), Set(-1.0f));
    V inverse = Add(Mul(Mul(approx, Set(-0.5f)), h), approx);
    inverse = Select(_mm_cmpunord_ps(inverse, inverse), approx, inverse);  // d = 0 or inf
    return _mm_and_ps(_mm_cmpneq_ps(d, _mm_setzero_ps()), Mul(g, inverse));
  }
};

}  // namespace

const LoopTable<float>* Sse2FloatLoops() {
  static const LoopTable<float> table = {"sse2", &loops::CoveredII<Sse2Float>,
                                         &loops::CoveredI<Sse2Float>, &loops::Diagonal<Sse2Float>,
                                         &loops::SquareMax<Sse2Float>};
  return &table;
}

}  // namespace sm3

#else  // not x86

const sm3::LoopTable<float>* sm3::Sse2FloatLoops() { return nullptr; }

#endif
