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
  static constexpr bool kSimdBfloat16 = true;
  static float Infinity() { return __builtin_inff(); }
  static V Load(const float* p) { return _mm256_loadu_ps(p); }
  static void Store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V Set(float x) { return _mm256_set1_ps(x); }
  static V Add(V a, V b) { return _mm256_add_ps(a, b); }
  static V Sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V Mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V MulAdd(V a, V b, V c) { return Add(Mul(a, b), c); }
  static V NegMulAdd(V a, V b, V c) { return Sub(c, Mul(a, b)); }
  static V IsNan(V a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
  // NaN wins from both sides (see loops_sse2.cc).
  static V Min(V a, V b) { return _mm256_or_ps(_mm256_min_ps(a, b), IsNan(a)); }
  static V MinOrSecond(V a, V b) { return _mm256_min_ps(a, b); }  // b when either is NaN
  static V Max(V a, V b) { return _mm256_or_ps(_mm256_max_ps(a, b), IsNan(a)); }
  static float ReduceMax(V v) {
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, v);
    float best = lanes[0];
    for (int i = 1; i < 8; ++i) best = (best != best || best > lanes[i]) ? best : lanes[i];
    return best;
  }
  // bfloat16 <-> float on two 128-bit halves (AVX has no 256-bit integer arithmetic; SSE4.1
  // comes with it). Same rounding and NaN handling as loops::Bfloat16Bits.
  static __m128 WidenBfloat16(__m128i bits16) {
    return _mm_castsi128_ps(_mm_slli_epi32(_mm_cvtepu16_epi32(bits16), 16));
  }
  static V LoadBfloat16(const uint16_t* p) {
    const __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_set_m128(WidenBfloat16(_mm_unpackhi_epi64(bits, bits)), WidenBfloat16(bits));
  }
  static __m128i RoundToBfloat16(__m128 v) {
    const __m128i word = _mm_castps_si128(v);
    const __m128i high = _mm_srli_epi32(word, 16);
    const __m128i bias = _mm_add_epi32(_mm_and_si128(high, _mm_set1_epi32(1)), _mm_set1_epi32(0x7fff));
    const __m128i rounded = _mm_srli_epi32(_mm_add_epi32(word, bias), 16);
    const __m128i quiet_nan = _mm_or_si128(_mm_and_si128(high, _mm_set1_epi32(0x8000)),
                                           _mm_set1_epi32(0x7fc0));
    const __m128i nan = _mm_castps_si128(_mm_cmpunord_ps(v, v));
    return _mm_blendv_epi8(rounded, quiet_nan, nan);
  }
  static void StoreBfloat16(uint16_t* p, V v) {
    const __m128i low = RoundToBfloat16(_mm256_castps256_ps128(v));
    const __m128i high = RoundToBfloat16(_mm256_extractf128_ps(v, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm_packus_epi32(low, high));
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
