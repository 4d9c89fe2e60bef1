/* The per-element arithmetic of one SM3 step, written once over a SIMD policy `M`.

Equations (the contract of sm3_tf/tf_step.py, which these loops reproduce):

  SM3-II   nu = beta_2 * min_i acc_i + w_new * g^2        (w_new = 1 if beta_2 == 1 else 1 - beta_2)
  SM3-I    nu = min_i acc_i                                (covers already updated)
  diagonal acc = beta_2 * acc + w_new * g^2, nu = acc       (rank-0/1 parameters, both variants)
  p = g / sqrt(nu + epsilon), 0 where nu + epsilon == 0 (the paper's 0/0 = 0; tf.divide_no_nan)
  buf = momentum * buf + (1 - momentum) * p ;  w = w - lr * buf   (no momentum: w = w - lr * p)

A "run" is a stretch of one row along the parameter's last axis, so the last-axis cover is a
contiguous array beside it and every other cover reduces to one number per row (`row_min`). A
sparse step covers its rows with acc_0 alone: it passes no last-axis cover (nullptr) and nu comes
from `row_min` only.

The momentum buffer is read and written in its storage type (Run::buffer_type): float directly,
bfloat16 converted in registers and rounded to nearest even on store, the weight using the
unrounded value. Policies with `kSimdBfloat16` convert with SIMD instructions; the others go
through Bfloat16Bits lane by lane, which the SIMD versions reproduce bit for bit.

Each loops_<isa>.cc defines a policy `M` (lane type V, kWidth lanes, Load/Store/Set/Add/Sub/Mul,
MulAdd/NegMulAdd (fused where the instruction set has FMA), NaN-propagating Min/Max/ReduceMax,
MinOrSecond (minps: the second operand when either is NaN), Precondition = g * rsqrt(d) refined
by one Newton step, 0 where d == 0, NaN where d is NaN) in an anonymous namespace and instantiates these templates
with it: every instantiation then has internal linkage, so code compiled for AVX-512 can never be
shared with the baseline build. For that reason nothing here may be a template that does not
depend on `M`, and this file includes nothing but step_params.h and the C library.

Every element-wise loop runs in chunks of kLagBytes: the gradient, buffer and covers of chunk c
are read while the weights of chunk c - 1 are updated from the steps kept in L1 (WeightLag; SM3-II
does so only where the weights sit near their buffer, WeightsNeedLag, and otherwise updates each
packet's weights in place), and the streams are prefetched kPrefetchBytes ahead
(PrefetchStreams); both are memory-system measures, they change no arithmetic. The last partial
packet of a run is copied into padded lane arrays and goes through the same packet function as the
body, so every element sees exactly the same operations. The padding
(gradient 0, cover -inf) gives nu = -inf, or nu = beta_2 * row_min without a cover: never above a
real lane's nu, so no effect on any maximum; padded lanes are discarded.
*/
#ifndef SM3_TF_KERNELS_LOOP_TEMPLATES_H_
#define SM3_TF_KERNELS_LOOP_TEMPLATES_H_

#include <cstdint>
#include <cstring>

#include "step_params.h"

namespace sm3 {
namespace loops {

// float <-> bfloat16 bits exactly as Eigen::bfloat16 (and so tf.cast): round to nearest even, a
// NaN becomes the quiet NaN of its sign. A double is rounded to float first, as Eigen does.
template <class M>
struct Bfloat16Bits {
  using C = typename M::Scalar;
  static C ToCompute(uint16_t bits) {
    const uint32_t word = static_cast<uint32_t>(bits) << 16;
    float value;
    std::memcpy(&value, &word, sizeof(value));
    return static_cast<C>(value);
  }
  static uint16_t FromCompute(C x) {
    const float value = static_cast<float>(x);
    uint32_t word;
    std::memcpy(&word, &value, sizeof(word));
    if (value != value) return static_cast<uint16_t>(((word >> 16) & 0x8000u) | 0x7fc0u);
    return static_cast<uint16_t>((word + 0x7fffu + ((word >> 16) & 1u)) >> 16);
  }
};

// Loads and stores of a momentum buffer stored as `kType`, kWidth lanes at element j.
template <class M, BufferType kType>
struct BufferIo {
  using C = typename M::Scalar;
  using V = typename M::V;
  static V Load(const void* base, int64_t j) { return M::Load(static_cast<const C*>(base) + j); }
  static void Store(void* base, int64_t j, V v) { M::Store(static_cast<C*>(base) + j, v); }
  static C LoadOne(const void* base, int64_t j) { return static_cast<const C*>(base)[j]; }
  static void StoreOne(void* base, int64_t j, C x) { static_cast<C*>(base)[j] = x; }
};

template <class M>
struct BufferIo<M, BufferType::kBfloat16> {
  using C = typename M::Scalar;
  using V = typename M::V;
  static V Load(const void* base, int64_t j) {
    const uint16_t* bits = static_cast<const uint16_t*>(base) + j;
    if constexpr (M::kSimdBfloat16) {
      return M::LoadBfloat16(bits);
    } else {
      alignas(64) C lanes[M::kWidth];
      for (int i = 0; i < M::kWidth; ++i) lanes[i] = Bfloat16Bits<M>::ToCompute(bits[i]);
      return M::Load(lanes);
    }
  }
  static void Store(void* base, int64_t j, V v) {
    uint16_t* bits = static_cast<uint16_t*>(base) + j;
    if constexpr (M::kSimdBfloat16) {
      M::StoreBfloat16(bits, v);
    } else {
      alignas(64) C lanes[M::kWidth];
      M::Store(lanes, v);
      for (int i = 0; i < M::kWidth; ++i) bits[i] = Bfloat16Bits<M>::FromCompute(lanes[i]);
    }
  }
  static C LoadOne(const void* base, int64_t j) {
    return Bfloat16Bits<M>::ToCompute(static_cast<const uint16_t*>(base)[j]);
  }
  static void StoreOne(void* base, int64_t j, C x) {
    static_cast<uint16_t*>(base)[j] = Bfloat16Bits<M>::FromCompute(x);
  }
};

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
    if (!decays) return M::MulAdd(g, g, past);
    return M::MulAdd(beta_2, past, M::Mul(new_weight, M::Mul(g, g)));
  }
};

// The weight stream runs one chunk behind the others. The variable and its momentum buffer are
// allocated alike and often sit at the same offset modulo 2 MiB (TF's allocator puts equal-sized
// tensors exactly their size apart); streaming both at the same index then ran the loop 1.5x
// slower than the same work on skewed arrays (docs/kernels_benchmark.md). Each chunk's steps
// (p, or the new buffer) wait in an L1 scratch and the weights of chunk c - 1 are updated while
// chunk c is read: the weight stream is kLagBytes away from the gradient and buffer streams.
constexpr int64_t kLagBytes = 2048;

// The lag costs a store and a load of every step through L1 and splits the weight stream from
// the others. It pays only where a buffer of the weights' type sits within 4 KiB of them modulo
// 2 MiB (WeightLagMode::kAuto), as TF places a variable's float32 momentum slot. A gradient at the
// weights' offset does not call for it: with no buffer or a bfloat16 one the steps ran 10-14%
// faster without the lag in that placement too (docs/kernels_benchmark.md). Either way the
// arithmetic is the same.
template <class M>
bool WeightsNeedLag(const Run<typename M::Scalar>& run, WeightLagMode mode) {
  if (mode != WeightLagMode::kAuto) return mode == WeightLagMode::kAlways;
  if (run.buffer_type != BufferType::kCompute) return false;
  constexpr uintptr_t kPeriod = uintptr_t{1} << 21, kNear = 4096;
  const uintptr_t distance = (reinterpret_cast<uintptr_t>(run.weight) -
                              reinterpret_cast<uintptr_t>(run.buffer)) &
                             (kPeriod - 1);
  return distance < kNear || distance > kPeriod - kNear;
}

template <class M>
struct WeightLag {
  using C = typename M::Scalar;
  static constexpr int64_t kChunk = kLagBytes / static_cast<int64_t>(sizeof(C));
  static_assert(kChunk % M::kWidth == 0, "a chunk holds whole packets");
  alignas(64) C steps[2][kChunk];
  int64_t pending = -1;  // first element of the chunk whose weights wait, or -1
  int64_t pending_size = 0;

  // Where the steps of the chunk starting at `begin` go.
  C* Steps(int64_t begin) { return steps[(begin / kChunk) & 1]; }

  // Updates the pending chunk's weights (w -= lr * step); the chunk at `begin` becomes pending.
  void Advance(const Lanes<M>& k, C* weight, int64_t begin, int64_t size) {
    Finish(k, weight);
    pending = begin;
    pending_size = size;
  }

  void Finish(const Lanes<M>& k, C* weight) {
    if (pending < 0) return;
    const C* step = Steps(pending);
    C* w = weight + pending;
    int64_t j = 0;
    for (; j + M::kWidth <= pending_size; j += M::kWidth) {
      M::Store(w + j, M::NegMulAdd(k.lr, M::Load(step + j), M::Load(w + j)));
    }
    if (j < pending_size) {  // the last partial packet, through padded lanes: the same operations
      alignas(64) C weight_lanes[M::kWidth] = {};
      alignas(64) C step_lanes[M::kWidth] = {};
      for (int64_t i = 0; j + i < pending_size; ++i) {
        weight_lanes[i] = w[j + i];
        step_lanes[i] = step[j + i];
      }
      M::Store(weight_lanes, M::NegMulAdd(k.lr, M::Load(step_lanes), M::Load(weight_lanes)));
      for (int64_t i = 0; j + i < pending_size; ++i) w[j + i] = weight_lanes[i];
    }
    pending = -1;
  }
};

// The hardware prefetchers stop at page boundaries and keep too few lines in flight for the
// loop's streams (a core then alternates between computing and waiting); asking for the lines
// kPrefetchBytes ahead into L2 cut the loop's CPU time by a quarter, and 8 KiB ahead streamed up
// to 15% faster than 4 KiB on a quieter machine (docs/kernels_benchmark.md).
constexpr int64_t kPrefetchBytes = 8192;

template <class M, BufferType kBuffer>
inline void PrefetchStreams(const Run<typename M::Scalar>& run, int64_t j) {
  using C = typename M::Scalar;
  __builtin_prefetch(reinterpret_cast<const char*>(run.grad + j) + kPrefetchBytes, 0, 1);
  // The weights are read kLagBytes behind (WeightLag): this is further ahead still.
  __builtin_prefetch(reinterpret_cast<const char*>(run.weight + j) + kPrefetchBytes, 1, 1);
  if constexpr (kBuffer != BufferType::kNone) {
    constexpr int64_t kBytes = kBuffer == BufferType::kBfloat16 ? 2 : sizeof(C);
    __builtin_prefetch(static_cast<const char*>(run.buffer) + j * kBytes + kPrefetchBytes, 1, 1);
  }
}

// p from g and nu, then the new buffer, for kWidth lanes at element j of a run: returns the step
// the weight takes (the new buffer before any rounding, or p without momentum).
template <class M, BufferType kBuffer>
inline typename M::V StepLanes(const Lanes<M>& k, typename M::V g, typename M::V nu,
                               void* buffer, int64_t j) {
  typename M::V step = M::Precondition(g, M::Add(nu, k.epsilon));
  if constexpr (kBuffer != BufferType::kNone) {
    step = M::MulAdd(k.momentum, BufferIo<M, kBuffer>::Load(buffer, j),
                     M::Mul(k.one_minus_momentum, step));
    BufferIo<M, kBuffer>::Store(buffer, j, step);  // rounded if bfloat16; `step` is not
  }
  return step;
}

// The buffer type of a padded tail: its lanes are staged in the compute type.
template <BufferType kType>
constexpr BufferType kTailBuffer = kType == BufferType::kNone ? kType : BufferType::kCompute;

// The last partial packet of a run's gradient and buffer, padded to full width (see the file
// comment), with the cover at those columns and its running maxima. Weights are not copied:
// WeightLag updates them from the steps.
template <class M, BufferType kBuffer>
struct PaddedTail {
  using C = typename M::Scalar;
  alignas(64) C grad[M::kWidth];
  alignas(64) C buffer[M::kWidth];
  alignas(64) C steps[M::kWidth];
  alignas(64) C cover[M::kWidth];
  alignas(64) C cover_max[M::kWidth];
  Run<C> run;
  int64_t count;

  // Lanes [j, j + n) of `source`, of `c` and of `c_max` (either may be nullptr).
  PaddedTail(const Run<C>& source, int64_t j, int64_t n, const C* c, const C* c_max,
             C cover_pad)
      : count(n) {
    for (int i = 0; i < M::kWidth; ++i) {
      const bool real = i < n;
      grad[i] = real ? source.grad[j + i] : C(0);
      buffer[i] = C(0);
      if constexpr (kBuffer != BufferType::kNone) {
        if (real) buffer[i] = BufferIo<M, kBuffer>::LoadOne(source.buffer, j + i);
      }
      cover[i] = (real && c) ? c[j + i] : cover_pad;
      cover_max[i] = (real && c_max) ? c_max[j + i] : -M::Infinity();
    }
    run = {grad, nullptr, kBuffer == BufferType::kNone ? nullptr : buffer, M::kWidth,
           kTailBuffer<kBuffer>};
  }

  // Copies the real lanes back: the buffer, the steps to `step_out`, the cover and its maxima
  // (when given).
  void WriteBack(const Run<C>& dest, int64_t j, C* step_out, C* c, C* c_max) const {
    for (int64_t i = 0; i < count; ++i) {
      if constexpr (kBuffer != BufferType::kNone) {
        BufferIo<M, kBuffer>::StoreOne(dest.buffer, j + i, buffer[i]);
      }
      step_out[i] = steps[i];
      if (c) c[j + i] = cover[i];
      if (c_max) c_max[j + i] = cover_max[i];
    }
  }
};

// SM3-II at columns [j, j + kWidth): nu from the covers, its running maxima, the buffer; the
// step goes to step + s.
// With kDirect the weights at j are updated here (w -= lr * step, as WeightLag does) instead.
template <class M, BufferType kBuffer, bool kCover, bool kNanRowMin, bool kDirect = false>
inline void CoveredIIPacket(const Lanes<M>& k, const Run<typename M::Scalar>& run, int64_t j,
                            typename M::V row_min, const typename M::Scalar* cover,
                            typename M::Scalar* cover_max, typename M::V* row_max,
                            typename M::Scalar* step, int64_t s) {
  using V = typename M::V;
  V w;
  if constexpr (kDirect) w = M::Load(run.weight + j);
  const V g = M::Load(run.grad + j);
  // minps returns its second operand when either is NaN: with no NaN row_min, the cover's NaN
  // comes through; a NaN row_min needs the full NaN-propagating Min.
  V smallest = row_min;
  if constexpr (kCover) {
    const V c = M::Load(cover + j);
    smallest = kNanRowMin ? M::Min(row_min, c) : M::MinOrSecond(row_min, c);
  }
  const V nu = k.DecayedPlusSquare(smallest, g);
  if constexpr (kCover) M::Store(cover_max + j, M::Max(M::Load(cover_max + j), nu));
  *row_max = M::Max(*row_max, nu);
  const V step_lanes = StepLanes<M, kBuffer>(k, g, nu, run.buffer, j);
  if constexpr (kDirect) {
    M::Store(run.weight + j, M::NegMulAdd(k.lr, step_lanes, w));
  } else {
    M::Store(step + s, step_lanes);
  }
}

// kLag: the weights follow one chunk behind (WeightLag); else each packet updates its own.
template <class M, BufferType kBuffer, bool kCover, bool kNanRowMin, bool kLag>
typename M::Scalar CoveredIIRun(const StepParams<typename M::Scalar>& params,
                                const Run<typename M::Scalar>& source,
                                const typename M::Scalar* cover, typename M::Scalar row_min,
                                typename M::Scalar* cover_max) {
  using C = typename M::Scalar;
  using Lag = WeightLag<M>;
  const Lanes<M> k(params);
  // A local copy: the SIMD stores may alias anything, so pointers read through a reference
  // would be reloaded after every store.
  const Run<C> run = source;
  const int64_t n = run.size;
  const typename M::V row_min_lanes = M::Set(row_min);
  typename M::V row_max = M::Set(-M::Infinity());
  Lag lag;
  for (int64_t begin = 0; begin < n; begin += Lag::kChunk) {
    const int64_t end = begin + Lag::kChunk < n ? begin + Lag::kChunk : n;
    C* step = lag.Steps(begin);
    int64_t j = begin;
    for (; j + M::kWidth <= end; j += M::kWidth) {
      PrefetchStreams<M, kBuffer>(run, j);
      CoveredIIPacket<M, kBuffer, kCover, kNanRowMin, !kLag>(
          k, run, j, row_min_lanes, cover, cover_max, &row_max, step, j - begin);
    }
    if (j < end) {
      PaddedTail<M, kBuffer> tail(run, j, end - j, cover, cover_max, -M::Infinity());
      CoveredIIPacket<M, kTailBuffer<kBuffer>, kCover, kNanRowMin>(
          k, tail.run, 0, row_min_lanes, tail.cover, tail.cover_max, &row_max, tail.steps, 0);
      // Without the lag only the tail's weights wait, for the lag's own padded packet.
      tail.WriteBack(run, j, kLag ? step + (j - begin) : lag.Steps(j), nullptr, cover_max);
      if constexpr (!kLag) lag.Advance(k, run.weight, j, end - j);
    }
    if constexpr (kLag) lag.Advance(k, run.weight, begin, end - begin);
  }
  lag.Finish(k, run.weight);
  return M::ReduceMax(row_max);
}

template <class M, BufferType kBuffer>
typename M::Scalar CoveredIIOfBuffer(const StepParams<typename M::Scalar>& params,
                                     const Run<typename M::Scalar>& run,
                                     const typename M::Scalar* cover,
                                     typename M::Scalar row_min, typename M::Scalar* cover_max) {
  using C = typename M::Scalar;
  const bool lag = WeightsNeedLag<M>(run, params.weight_lag);
  C (*const loop)(const StepParams<C>&, const Run<C>&, const C*, C, C*) =
      cover == nullptr
          ? (lag ? &CoveredIIRun<M, kBuffer, false, true, true>
                 : &CoveredIIRun<M, kBuffer, false, true, false>)
      : row_min != row_min ? (lag ? &CoveredIIRun<M, kBuffer, true, true, true>
                                  : &CoveredIIRun<M, kBuffer, true, true, false>)
                           : (lag ? &CoveredIIRun<M, kBuffer, true, false, true>
                                  : &CoveredIIRun<M, kBuffer, true, false, false>);
  return loop(params, run, cover, row_min, cover == nullptr ? nullptr : cover_max);
}

// SM3-II on a run: `cover` (nullable) is the last-axis cover at the run's columns, `row_min` the
// minimum of the other covers for this row; `cover_max` (given exactly when `cover` is)
// receives the running maxima of nu per column. Returns the maximum of nu over the run.
template <class M>
typename M::Scalar CoveredII(const StepParams<typename M::Scalar>& params,
                             const Run<typename M::Scalar>& run, const typename M::Scalar* cover,
                             typename M::Scalar row_min, typename M::Scalar* cover_max) {
  switch (run.buffer_type) {
    case BufferType::kNone:
      return CoveredIIOfBuffer<M, BufferType::kNone>(params, run, cover, row_min, cover_max);
    case BufferType::kCompute:
      return CoveredIIOfBuffer<M, BufferType::kCompute>(params, run, cover, row_min, cover_max);
    case BufferType::kBfloat16:
      return CoveredIIOfBuffer<M, BufferType::kBfloat16>(params, run, cover, row_min, cover_max);
  }
  return -M::Infinity();
}

// One run of an element-wise loop (SM3-I's second pass, diagonal covers): `block` handles the
// packet at j of `run` with `acc` (nullable) at j, and stores its steps at step + s; the weights
// follow one chunk behind. The last partial packet goes through `block` on a PaddedTail whose
// cover slot holds acc's lanes padded with -inf; acc is written back when kWritesAcc.
template <class M, BufferType kBuffer, bool kWritesAcc, class Acc, class Block>
void ElementwiseRun(const Lanes<M>& k, const Run<typename M::Scalar>& source, Acc* acc,
                    const Block& block) {
  using C = typename M::Scalar;
  using Lag = WeightLag<M>;
  const Run<C> run = source;  // a local copy, see CoveredIIRun
  const int64_t n = run.size;
  Lag lag;
  for (int64_t begin = 0; begin < n; begin += Lag::kChunk) {
    const int64_t end = begin + Lag::kChunk < n ? begin + Lag::kChunk : n;
    C* step = lag.Steps(begin);
    int64_t j = begin;
    for (; j + M::kWidth <= end; j += M::kWidth) {
      PrefetchStreams<M, kBuffer>(run, j);
      if constexpr (kWritesAcc) {
        __builtin_prefetch(reinterpret_cast<const char*>(acc + j) + kPrefetchBytes, 1, 1);
      }
      block.template Packet<kBuffer>(run, j, acc, step, j - begin);
    }
    if (j < end) {
      PaddedTail<M, kBuffer> tail(run, j, end - j, acc, nullptr, -M::Infinity());
      block.template Packet<kTailBuffer<kBuffer>>(tail.run, 0, tail.cover, tail.steps, 0);
      tail.WriteBack(run, j, step + (j - begin), kWritesAcc ? const_cast<C*>(acc) : nullptr,
                     nullptr);
    }
    lag.Advance(k, run.weight, begin, end - begin);
  }
  lag.Finish(k, run.weight);
}

// SM3-I's second pass: nu = min(row_min, cover[j]) with the covers already updated (nu = row_min
// without a cover; the cover is the PaddedTail's cover slot).
template <class M>
struct CoveredIPacket {
  const Lanes<M>& k;
  typename M::V row_min;
  bool has_cover;

  template <BufferType kBuffer>
  void Packet(const Run<typename M::Scalar>& run, int64_t j, const typename M::Scalar* cover,
              typename M::Scalar* step, int64_t s) const {
    const typename M::V g = M::Load(run.grad + j);
    const typename M::V nu = has_cover ? M::Min(row_min, M::Load(cover + j)) : row_min;
    M::Store(step + s, StepLanes<M, kBuffer>(k, g, nu, run.buffer, j));
  }
};

template <class M, BufferType kBuffer>
void CoveredIOfBuffer(const StepParams<typename M::Scalar>& params,
                      const Run<typename M::Scalar>& run, const typename M::Scalar* cover,
                      typename M::Scalar row_min) {
  const Lanes<M> k(params);
  const CoveredIPacket<M> block{k, M::Set(row_min), cover != nullptr};
  ElementwiseRun<M, kBuffer, false>(k, run, cover, block);
}

// SM3-I on a run: nu = min(row_min, cover[j]) with the covers already updated; nu = row_min
// when `cover` is nullptr.
template <class M>
void CoveredI(const StepParams<typename M::Scalar>& params, const Run<typename M::Scalar>& run,
              const typename M::Scalar* cover, typename M::Scalar row_min) {
  switch (run.buffer_type) {
    case BufferType::kNone:
      return CoveredIOfBuffer<M, BufferType::kNone>(params, run, cover, row_min);
    case BufferType::kCompute:
      return CoveredIOfBuffer<M, BufferType::kCompute>(params, run, cover, row_min);
    case BufferType::kBfloat16:
      return CoveredIOfBuffer<M, BufferType::kBfloat16>(params, run, cover, row_min);
  }
}

// Element-wise covers: SM3-II takes nu = decayed min(cap, acc) + g^2 and stores it; SM3-I
// (kCapAfterUpdate) stores acc = decayed acc + g^2 and takes nu = min(cap, acc). Tracks the
// maximum new acc.
template <class M, bool kCapAfterUpdate>
struct DiagonalPacket {
  const Lanes<M>& k;
  typename M::V cap;
  typename M::V* acc_max;

  template <BufferType kBuffer>
  void Packet(const Run<typename M::Scalar>& run, int64_t j, typename M::Scalar* acc,
              typename M::Scalar* step, int64_t s) const {
    const typename M::V g = M::Load(run.grad + j);
    const typename M::V past = M::Load(acc + j);
    typename M::V updated, nu;
    if constexpr (kCapAfterUpdate) {
      updated = k.DecayedPlusSquare(past, g);
      nu = M::Min(cap, updated);
    } else {
      updated = nu = k.DecayedPlusSquare(M::Min(cap, past), g);
    }
    *acc_max = M::Max(*acc_max, updated);
    M::Store(acc + j, updated);
    M::Store(step + s, StepLanes<M, kBuffer>(k, g, nu, run.buffer, j));
  }
};

template <class M, BufferType kBuffer, bool kCapAfterUpdate>
typename M::Scalar DiagonalRun(const StepParams<typename M::Scalar>& params,
                               const Run<typename M::Scalar>& run, typename M::Scalar* acc,
                               typename M::Scalar cap) {
  const Lanes<M> k(params);
  typename M::V acc_max = M::Set(-M::Infinity());
  const DiagonalPacket<M, kCapAfterUpdate> block{k, M::Set(cap), &acc_max};
  ElementwiseRun<M, kBuffer, true>(k, run, acc, block);
  return M::ReduceMax(acc_max);
}

template <class M, BufferType kBuffer>
typename M::Scalar DiagonalOfBuffer(const StepParams<typename M::Scalar>& params,
                                    const Run<typename M::Scalar>& run, typename M::Scalar* acc,
                                    typename M::Scalar cap, bool cap_after_update) {
  return cap_after_update ? DiagonalRun<M, kBuffer, true>(params, run, acc, cap)
                          : DiagonalRun<M, kBuffer, false>(params, run, acc, cap);
}

// Element-wise covers `acc` (rank-0/1 parameters, and the one axis longer than 1 of a larger
// rank), updated in place; `cap` is the minimum of the other covers (+inf when there are none,
// which makes both orders diagonal Adagrad). Returns the maximum of the new acc over the run.
template <class M>
typename M::Scalar Diagonal(const StepParams<typename M::Scalar>& params,
                            const Run<typename M::Scalar>& run, typename M::Scalar* acc,
                            typename M::Scalar cap, bool cap_after_update) {
  switch (run.buffer_type) {
    case BufferType::kNone:
      return DiagonalOfBuffer<M, BufferType::kNone>(params, run, acc, cap, cap_after_update);
    case BufferType::kCompute:
      return DiagonalOfBuffer<M, BufferType::kCompute>(params, run, acc, cap, cap_after_update);
    case BufferType::kBfloat16:
      return DiagonalOfBuffer<M, BufferType::kBfloat16>(params, run, acc, cap, cap_after_update);
  }
  return -M::Infinity();
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
  using C = typename M::Scalar;
  typename M::V row_max = M::Set(-M::Infinity());
  int64_t j = 0;
  for (; j + M::kWidth <= n; j += M::kWidth) {
    SquareMaxBlock<M, kCoverMax>(grad + j, kCoverMax ? cover_max + j : nullptr, &row_max);
  }
  if (j < n) {
    alignas(64) C grad_lanes[M::kWidth];
    alignas(64) C max_lanes[M::kWidth];
    for (int i = 0; i < M::kWidth; ++i) {
      const bool real = j + i < n;
      grad_lanes[i] = real ? grad[j + i] : C(0);
      max_lanes[i] = (real && kCoverMax) ? cover_max[j + i] : -M::Infinity();
    }
    SquareMaxBlock<M, kCoverMax>(grad_lanes, max_lanes, &row_max);
    for (int64_t i = 0; kCoverMax && j + i < n; ++i) cover_max[j + i] = max_lanes[i];
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
