/* Plain C++ loops: float on non-x86 CPUs, and double (float64 parameters) everywhere. */
#include <cmath>
#include <limits>

#include "loop_templates.h"
#include "loops.h"

namespace sm3 {
namespace {

// One lane; p = g / sqrt(d), 0 where d == 0: tf.math.divide_no_nan(g, sqrt(d)) exactly.
template <typename C>
struct ScalarLanes {
  using Scalar = C;
  using V = C;
  static constexpr int kWidth = 1;
  static constexpr bool kSimdBfloat16 = false;  // loops::Bfloat16Bits lane by lane
  static C Infinity() { return std::numeric_limits<C>::infinity(); }
  static V Load(const C* p) { return *p; }
  static void Store(C* p, V v) { *p = v; }
  static V Set(C x) { return x; }
  static V Add(V a, V b) { return a + b; }
  static V Sub(V a, V b) { return a - b; }
  static V Mul(V a, V b) { return a * b; }
  static V MulAdd(V a, V b, V c) { return a * b + c; }
  static V NegMulAdd(V a, V b, V c) { return c - a * b; }
  static V Min(V a, V b) { return (a != a || a < b) ? a : b; }
  static V MinOrSecond(V a, V b) { return a < b ? a : b; }  // b when either is NaN, as minps
  static V Max(V a, V b) { return (a != a || a > b) ? a : b; }
  static C ReduceMax(V a) { return a; }
  static V Precondition(V g, V d) { return d == C(0) ? C(0) : g / std::sqrt(d); }
};

template <typename C>
const LoopTable<C>* PortableTable(const char* name) {
  using M = ScalarLanes<C>;
  static const LoopTable<C> table = {name, &loops::CoveredII<M>, &loops::CoveredI<M>,
                                     &loops::Diagonal<M>, &loops::SquareMax<M>};
  return &table;
}

}  // namespace

const LoopTable<float>* PortableFloatLoops() { return PortableTable<float>("portable"); }
const LoopTable<double>* PortableDoubleLoops() { return PortableTable<double>("portable"); }

}  // namespace sm3
