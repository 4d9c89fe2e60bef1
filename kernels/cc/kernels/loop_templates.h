/* The per-element arithmetic of one SM3 step, written once over a SIMD policy `M`.

Equations (the contract of sm3_tf/tf_step.py, which these loops reproduce):

  SM3-II   nu = beta_2 * min_i acc_i + w_new * g^2        (w_new = 1 if beta_2 == 1 else 1 - beta_2)
  SM3-I    nu = min_i acc_i                                (covers already updated)
  diagonal nu = beta_2 * acc + w_new * g^2 ;  acc = nu     (rank-0/1 parameters, both variants)
  p = g / sqrt(nu + epsilon), 0 where nu + epsilon == 0 (the paper's 0/0 = 0; tf.divide_no_nan)
  buf = momentum * buf + (1 - momentum) * p ;  w = w - lr * buf   (no momentum: w = w - lr * p)

A "run" is a stretch of one row along the parameter's last axis, so the last-axis cover is a
contiguous array beside it and every other cover reduces to one number per row (`row_min`). A
sparse step covers its rows with acc_0 alone: it passes no last-axis cover (nullptr) and nu comes
from `row_min` only.

Each loops_<isa>.cc defines a policy `M` (lane type V, kWidth lanes, Load/Store/Set/Add/Sub/Mul,
NaN-propagating Min/Max/ReduceMax, Precondition = g * rsqrt(d) refined by one Newton step, 0 where
d == 0, NaN where d is NaN) in an anonymous namespace and instantiates these templates
with it: every instantiation then has internal linkage, so code compiled for AVX-512 can never be
shared with the baseline build. For that reason nothing here may be a template that does not
depend on `M`, and this file includes nothing but step_params.h.

The last partial packet of a run is copied into padded lane arrays and goes through the same
block function as the body, so every element sees exactly the same operations. The padding
(gradient 0, cover -inf) gives nu = -inf, or nu = beta_2 * row_min without a cover: never above a
real lane's nu, so no effect on any maximum; padded lanes are discarded.
*/
#ifndef SM3_TF_KERNELS_LOOP_TEMPLATES_H_
#define SM3_TF_KERNELS_LOOP_TEMPLATES_H_

#include "step_params.h"

namespace sm3 {
namespace loops {

// The step's constants broadcast to lanes once per run, kept in registers by the compiler.
template <class M>
struct Lanes {
  using C = typename M::Scalar;
  using V = typename M::V;
  V lr, momentum, one_minus_momentum, beta_2, new_weight, epsilon;
  bool decays;  // beta_2 != 1, and then also w_new != 1

  explicit Lanes(const StepParams<C>& p)
      : lr(M::Set(p.lr)), momentum(M::Set(p.momentum)),
        one_minus_momentum(M::Set(p.one_minus_momentum)), beta_2(M::Set(p.beta_2)),
        new_weight(M::Set(p.new_weight)), epsilon(M::Set(p.epsilon)), decays(p.decays) {}

  // beta_2 * past + w_new * g^2; with beta_2 == 1 (w_new == 1) no multiplications, as tf_step.
  V DecayedPlusSquare(V past, V g) const {
    const V squared = M::Mul(g, g);
    if (!decays) return M::Add(past, squared);
    return M::Add(M::Mul(beta_2, past), M::Mul(new_weight, squared));
  }
};

// p from g and nu, then the momentum buffer and the weight, for kWidth lanes.
template <class M, bool kMomentum>
inline void UpdateLanes(const Lanes<M>& k, typename M::V g, typename M::V nu,
                        typename M::Scalar* weight, typename M::Scalar* buffer) {
  typename M::V step = M::Precondition(g, M::Add(nu, k.epsilon));
  if (kMomentum) {
    // The stored buffer may be rounded later (bfloat16); the weight uses the unrounded value.
    step = M::Add(M::Mul(k.momentum, M::Load(buffer)), M::Mul(k.one_minus_momentum, step));
    M::Store(buffer, step);
  }
  M::Store(weight, M::Sub(M::Load(weight), M::Mul(k.lr, step)));
}

// A run's last partial packet, padded to full width (see the file comment).
template <class M>
struct PaddedTail {
  using C = typename M::Scalar;
  C grad[M::kWidth], weight[M::kWidth], buffer[M::kWidth], cover[M::kWidth], cover_max[M::kWidth];
  int64_t count;

  PaddedTail(const C* g, const C* w, const C* b, const C* c, const C* c_max, int64_t n,
             C cover_pad)
      : count(n) {
    for (int i = 0; i < M::kWidth; ++i) {
      const bool real = i < n;
      grad[i] = real ? g[i] : C(0);
      weight[i] = real ? w[i] : C(0);
      buffer[i] = (real && b) ? b[i] : C(0);
      cover[i] = (real && c) ? c[i] : cover_pad;
      cover_max[i] = (real && c_max) ? c_max[i] : -M::Infinity();
    }
  }

  // Copies the updated lanes back (whichever of the arrays the caller passes).
  void WriteBack(C* w, C* b, C* c, C* c_max) const {
    for (int64_t i = 0; i < count; ++i) {
      w[i] = weight[i];
      if (b) b[i] = buffer[i];
      if (c) c[i] = cover[i];
      if (c_max) c_max[i] = cover_max[i];
    }
  }
};

template <class M, bool kMomentum, bool kCover, bool kCoverMax>
inline void CoveredIIBlock(const Lanes<M>& k, const typename M::Scalar* g,
                           typename M::Scalar* w, typename M::Scalar* b,
                           const typename M::Scalar* cover, typename M::V row_min,
                           typename M::Scalar* cover_max, typename M::V* row_max) {
  const typename M::V gv = M::Load(g);
  const typename M::V smallest = kCover ? M::Min(row_min, M::Load(cover)) : row_min;
  const typename M::V nu = k.DecayedPlusSquare(smallest, gv);
  if (kCoverMax) M::Store(cover_max, M::Max(M::Load(cover_max), nu));
  *row_max = M::Max(*row_max, nu);
  UpdateLanes<M, kMomentum>(k, gv, nu, w, b);
}

template <class M, bool kMomentum, bool kCover, bool kCoverMax>
typename M::Scalar CoveredIIRun(const StepParams<typename M::Scalar>& params,
                                const Run<typename M::Scalar>& run,
                                const typename M::Scalar* cover, typename M::Scalar row_min,
                                typename M::Scalar* cover_max) {
  using C = typename M::Scalar;
  const Lanes<M> k(params);
  const C* g = run.grad;
  C* w = run.weight;
  C* b = run.buffer;
  const int64_t n = run.size;
  const typename M::V row_min_lanes = M::Set(row_min);
  typename M::V row_max = M::Set(-M::Infinity());
  int64_t j = 0;
  for (; j + M::kWidth <= n; j += M::kWidth) {
    CoveredIIBlock<M, kMomentum, kCover, kCoverMax>(
        k, g + j, w + j, kMomentum ? b + j : nullptr, kCover ? cover + j : nullptr,
        row_min_lanes, kCoverMax ? cover_max + j : nullptr, &row_max);
  }
  if (j < n) {
    PaddedTail<M> tail(g + j, w + j, kMomentum ? b + j : nullptr, kCover ? cover + j : nullptr,
                       kCoverMax ? cover_max + j : nullptr, n - j, -M::Infinity());
    CoveredIIBlock<M, kMomentum, kCover, kCoverMax>(k, tail.grad, tail.weight, tail.buffer,
                                                    tail.cover, row_min_lanes, tail.cover_max,
                                                    &row_max);
    tail.WriteBack(w + j, kMomentum ? b + j : nullptr, nullptr,
                   kCoverMax ? cover_max + j : nullptr);
  }
  return M::ReduceMax(row_max);
}

template <class M, bool kMomentum>
typename M::Scalar CoveredIIWithMomentum(const StepParams<typename M::Scalar>& params,
                                         const Run<typename M::Scalar>& run,
                                         const typename M::Scalar* cover,
                                         typename M::Scalar row_min,
                                         typename M::Scalar* cover_max) {
  if (cover == nullptr) {
    return CoveredIIRun<M, kMomentum, false, false>(params, run, cover, row_min, nullptr);
  }
  return cover_max ? CoveredIIRun<M, kMomentum, true, true>(params, run, cover, row_min, cover_max)
                   : CoveredIIRun<M, kMomentum, true, false>(params, run, cover, row_min, nullptr);
}

// SM3-II on a run: `cover` (nullable) is the last-axis cover at the run's columns, `row_min` the
// minimum of the other covers for this row; `cover_max` (nullable, needs `cover`) receives the
// running maxima of nu per column. Returns the maximum of nu over the run.
template <class M>
typename M::Scalar CoveredII(const StepParams<typename M::Scalar>& params,
                             const Run<typename M::Scalar>& run, const typename M::Scalar* cover,
                             typename M::Scalar row_min, typename M::Scalar* cover_max) {
  return params.has_momentum
             ? CoveredIIWithMomentum<M, true>(params, run, cover, row_min, cover_max)
             : CoveredIIWithMomentum<M, false>(params, run, cover, row_min, cover_max);
}

template <class M, bool kMomentum, bool kCover>
inline void CoveredIBlock(const Lanes<M>& k, const typename M::Scalar* g, typename M::Scalar* w,
                          typename M::Scalar* b, const typename M::Scalar* cover,
                          typename M::V row_min) {
  UpdateLanes<M, kMomentum>(k, M::Load(g), kCover ? M::Min(row_min, M::Load(cover)) : row_min, w,
                            b);
}

template <class M, bool kMomentum, bool kCover>
void CoveredIRun(const StepParams<typename M::Scalar>& params, const Run<typename M::Scalar>& run,
                 const typename M::Scalar* cover, typename M::Scalar row_min) {
  const Lanes<M> k(params);
  const int64_t n = run.size;
  const typename M::V row_min_lanes = M::Set(row_min);
  int64_t j = 0;
  for (; j + M::kWidth <= n; j += M::kWidth) {
    CoveredIBlock<M, kMomentum, kCover>(k, run.grad + j, run.weight + j,
                                        kMomentum ? run.buffer + j : nullptr,
                                        kCover ? cover + j : nullptr, row_min_lanes);
  }
  if (j < n) {
    typename M::Scalar* b = kMomentum ? run.buffer + j : nullptr;
    PaddedTail<M> tail(run.grad + j, run.weight + j, b, kCover ? cover + j : nullptr, nullptr,
                       n - j, -M::Infinity());
    CoveredIBlock<M, kMomentum, kCover>(k, tail.grad, tail.weight, tail.buffer, tail.cover,
                                        row_min_lanes);
    tail.WriteBack(run.weight + j, b, nullptr, nullptr);
  }
}

// SM3-I on a run: nu = min(row_min, cover[j]) with the covers already updated; nu = row_min
// when `cover` is nullptr.
template <class M>
void CoveredI(const StepParams<typename M::Scalar>& params, const Run<typename M::Scalar>& run,
              const typename M::Scalar* cover, typename M::Scalar row_min) {
  if (params.has_momentum) {
    cover ? CoveredIRun<M, true, true>(params, run, cover, row_min)
          : CoveredIRun<M, true, false>(params, run, cover, row_min);
  } else {
    cover ? CoveredIRun<M, false, true>(params, run, cover, row_min)
          : CoveredIRun<M, false, false>(params, run, cover, row_min);
  }
}

template <class M, bool kMomentum>
inline void DiagonalBlock(const Lanes<M>& k, const typename M::Scalar* g, typename M::Scalar* w,
                          typename M::Scalar* b, typename M::Scalar* acc) {
  const typename M::V gv = M::Load(g);
  const typename M::V nu = k.DecayedPlusSquare(M::Load(acc), gv);
  M::Store(acc, nu);
  UpdateLanes<M, kMomentum>(k, gv, nu, w, b);
}

template <class M, bool kMomentum>
void DiagonalRun(const StepParams<typename M::Scalar>& params, const Run<typename M::Scalar>& run,
                 typename M::Scalar* acc) {
  const Lanes<M> k(params);
  const int64_t n = run.size;
  int64_t j = 0;
  for (; j + M::kWidth <= n; j += M::kWidth) {
    DiagonalBlock<M, kMomentum>(k, run.grad + j, run.weight + j,
                                kMomentum ? run.buffer + j : nullptr, acc + j);
  }
  if (j < n) {
    typename M::Scalar* b = kMomentum ? run.buffer + j : nullptr;
    PaddedTail<M> tail(run.grad + j, run.weight + j, b, acc + j, nullptr, n - j,
                       typename M::Scalar(0));
    DiagonalBlock<M, kMomentum>(k, tail.grad, tail.weight, tail.buffer, tail.cover);
    tail.WriteBack(run.weight + j, b, acc + j, nullptr);
  }
}

// Rank-0/1 parameters (one accumulator per element, both variants): `acc` is updated in place.
template <class M>
void Diagonal(const StepParams<typename M::Scalar>& params, const Run<typename M::Scalar>& run,
              typename M::Scalar* acc) {
  if (params.has_momentum) {
    DiagonalRun<M, true>(params, run, acc);
  } else {
    DiagonalRun<M, false>(params, run, acc);
  }
}

template <class M, bool kCoverMax>
inline void SquareMaxBlock(const typename M::Scalar* g, typename M::Scalar* cover_max,
                           typename M::V* row_max) {
  const typename M::V gv = M::Load(g);
  const typename M::V squared = M::Mul(gv, gv);
  if (kCoverMax) M::Store(cover_max, M::Max(M::Load(cover_max), squared));
  *row_max = M::Max(*row_max, squared);
}

template <class M, bool kCoverMax>
typename M::Scalar SquareMaxRun(const typename M::Scalar* grad, int64_t n,
                                typename M::Scalar* cover_max) {
  typename M::V row_max = M::Set(-M::Infinity());
  int64_t j = 0;
  for (; j + M::kWidth <= n; j += M::kWidth) {
    SquareMaxBlock<M, kCoverMax>(grad + j, kCoverMax ? cover_max + j : nullptr, &row_max);
  }
  if (j < n) {
    typename M::Scalar* c_max = kCoverMax ? cover_max + j : nullptr;
    PaddedTail<M> tail(grad + j, grad + j, nullptr, nullptr, c_max, n - j, M::Infinity());
    SquareMaxBlock<M, kCoverMax>(tail.grad, tail.cover_max, &row_max);
    for (int64_t i = 0; kCoverMax && i < n - j; ++i) c_max[i] = tail.cover_max[i];
  }
  return M::ReduceMax(row_max);
}

// SM3-I's first pass: the maximum of g^2 over a run, and (when `cover_max` is given) the running
// maxima of g^2 per column. The padding's g^2 = 0 cannot exceed a real g^2.
template <class M>
typename M::Scalar SquareMax(const typename M::Scalar* grad, int64_t size,
                             typename M::Scalar* cover_max) {
  return cover_max ? SquareMaxRun<M, true>(grad, size, cover_max)
                   : SquareMaxRun<M, false>(grad, size, cover_max);
}

}  // namespace loops
}  // namespace sm3

#endif  // SM3_TF_KERNELS_LOOP_TEMPLATES_H_
