/* AVX-512F loops (16 float lanes). Compiled with -mavx512f; chosen only on CPUs with AVX-512F. */
#include "loops.h"

#if defined(__AVX512F__)
#include <immintrin.h>

#include "loop_templates.h"

namespace sm3 {
namespace {

struct Avx512Float {
  using Scalar = float;
  using V = __m512;
  static constexpr int kWidth = 16;
  static constexpr bool kSimdBfloat16 = true;
  static float Infinity() { return __builtin_inff(); }
  static V Load(const float* p) { return _mm512_loadu_ps(p); }
  static void Store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V Set(float x) { return _mm512_set1_ps(x); }
  static V Add(V a, V b) { return _mm512_add_ps(a, b); }
  static V Sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V Mul(V a, V b) { return _mm512_mul_ps(a, b); }
  // a * b + c and c - a * b, rounded once: AVX-512F has FMA (the baseline builds do not, so
  // their last bits may differ; every instruction set stays within the tests' 1e-5).
  static V MulAdd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V NegMulAdd(V a, V b, V c) { return _mm512_fnmadd_ps(a, b, c); }
  static __mmask16 IsNan(V a) { return _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q); }
  // minps/maxps return the second operand on NaN; put a NaN first operand back.
  static V Min(V a, V b) { return _mm512_mask_mov_ps(_mm512_min_ps(a, b), IsNan(a), a); }
  static V MinOrSecond(V a, V b) { return _mm512_min_ps(a, b); }  // b when either is NaN
  static V Max(V a, V b) { return _mm512_mask_mov_ps(_mm512_max_ps(a, b), IsNan(a), a); }
  static float ReduceMax(V v) {
    if (IsNan(v) != 0) return __builtin_nanf("");
    return _mm512_reduce_max_ps(v);
  }
  // bfloat16 bits are the high half of a float's: widen and shift. Storing rounds to nearest
  // even and turns NaN into the quiet NaN of its sign, as loops::Bfloat16Bits (and Eigen).
  static V LoadBfloat16(const uint16_t* p) {
    const __m512i bits = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(bits, 16));
  }
  static void StoreBfloat16(uint16_t* p, V v) {
    const __m512i word = _mm512_castps_si512(v);
    const __m512i high = _mm512_srli_epi32(word, 16);
    const __m512i bias = _mm512_add_epi32(_mm512_and_si512(high, _mm512_set1_epi32(1)),
                                          _mm512_set1_epi32(0x7fff));
    __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(word, bias), 16);
    const __m512i quiet_nan = _mm512_or_si512(_mm512_and_si512(high, _mm512_set1_epi32(0x8000)),
                                              _mm512_set1_epi32(0x7fc0));
    rounded = _mm512_mask_mov_epi32(rounded, IsNan(v), quiet_nan);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(rounded));
  }
  // g * rsqrt(d): rsqrt14 refined by one Newton step; 0 where d == 0.
  static V Precondition(V g, V d) {
    const V approx = _mm512_rsqrt14_ps(d);
    const V h = _mm512_fmsub_ps(Mul(d, approx), approx, Set(1.0f));
    V inverse = MulAdd(Mul(approx, Set(-0.5f)), h, approx);
    inverse = _mm512_mask_mov_ps(inverse, IsNan(inverse), approx);  // d = 0 or inf
    return _mm512_maskz_mul_ps(_mm512_cmp_ps_mask(d, _mm512_setzero_ps(), _CMP_NEQ_UQ), g,
                               inverse);
  }
};

}  // namespace

const LoopTable<float>* Avx512FloatLoops() {
  static const LoopTable<float> table = {"avx512", &loops::CoveredII<Avx512Float>,
                                         &loops::CoveredI<Avx512Float>,
                                         &loops::Diagonal<Avx512Float>,
                                         &loops::SquareMax<Avx512Float>};
  return &table;
}

}  // namespace sm3

#else  // built without -mavx512f

const sm3::LoopTable<float>* sm3::Avx512FloatLoops() { return nullptr; }

#endif
