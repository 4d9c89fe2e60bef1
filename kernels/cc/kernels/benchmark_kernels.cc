/* CPU kernel of the benchmark op Sm3>StreamProbe (../ops/benchmark_ops.cc), in the benchmarks' own
library (_sm3_benchmark_ops). */
#define EIGEN_USE_THREADS

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tiling.h"
#include "variable_access.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace sm3 {
namespace {

using tensorflow::OpKernelContext;
using tensorflow::Tensor;

// Floats from one stream's start to the next: `elements` plus `skew`, rounded up to 64 bytes.
int64_t StreamStride(int64_t elements, int64_t skew) { return (elements + skew + 15) / 16 * 16; }

// One probe pass over [begin, end) of every stream (begin, end multiples of 16): R read-only
// streams, then W read-written ones. Portable C++ (the compiler vectorizes it for the baseline).
template <int R, int W>
void ProbeRangePortable(float* const* streams, int64_t begin, int64_t end, bool prefetch) {
  for (int64_t i = begin; i < end; i += 16) {
    if (prefetch) {
      for (int s = 0; s < R + W; ++s) __builtin_prefetch(streams[s] + i + 1024, 1, 1);
    }
    for (int64_t k = i; k < i + 16; ++k) {
      float sum = 0.0f;
      float written[W];
      for (int s = 0; s < R; ++s) sum += streams[s][k];
      for (int s = 0; s < W; ++s) sum += written[s] = streams[R + s][k];
      for (int s = 0; s < W; ++s) streams[R + s][k] = 0.5f * written[s] + 0.25f * sum;
    }
  }
}

#if defined(__x86_64__)
// The same with AVX-512 (chosen at run time), optionally with non-temporal stores.
template <int R, int W, bool kNonTemporal>
__attribute__((target("avx512f"))) void ProbeRangeAvx512(float* const* streams, int64_t begin,
                                                         int64_t end, bool prefetch) {
  float* s[R + W];
  for (int k = 0; k < R + W; ++k) s[k] = streams[k];
  const __m512 half = _mm512_set1_ps(0.5f), quarter = _mm512_set1_ps(0.25f);
  for (int64_t i = begin; i < end; i += 16) {
    if (prefetch) {
      for (int k = 0; k < R + W; ++k) __builtin_prefetch(s[k] + i + 1024, 1, 1);
    }
    __m512 sum = _mm512_setzero_ps();
    __m512 written[W];
    for (int k = 0; k < R; ++k) sum = _mm512_add_ps(sum, _mm512_loadu_ps(s[k] + i));
    for (int k = 0; k < W; ++k) {
      written[k] = _mm512_loadu_ps(s[R + k] + i);
      sum = _mm512_add_ps(sum, written[k]);
    }
    for (int k = 0; k < W; ++k) {
      const __m512 value = _mm512_fmadd_ps(half, written[k], _mm512_mul_ps(quarter, sum));
      if (kNonTemporal) {
        _mm512_stream_ps(s[R + k] + i, value);  // streams are 64-byte aligned (StreamStride)
      } else {
        _mm512_storeu_ps(s[R + k] + i, value);
      }
    }
  }
  if (kNonTemporal) _mm_sfence();
}
#endif

using ProbeFn = void (*)(float* const*, int64_t, int64_t, bool);

// Adam's arithmetic over streams g; w, m, v (beta_1 0.9, beta_2 0.999, lr 1e-3, eps 1e-8, bias
// corrections folded into constants), loads and stores in the order of PyTorch's fused CPU loop.
void AdamRangePortable(float* const* s, int64_t begin, int64_t end, bool prefetch) {
  float* g = s[0];
  float* w = s[1];
  float* m = s[2];
  float* v = s[3];
  for (int64_t i = begin; i < end; ++i) {
    if (prefetch && i % 16 == 0) {
      for (int k = 0; k < 4; ++k) __builtin_prefetch(s[k] + i + 1024, 1, 1);
    }
    const float grad = g[i];
    const float weight = w[i];
    const float mean = m[i] + 0.1f * (grad - m[i]);
    const float square = v[i] * 0.999f + 0.001f * grad * grad;
    m[i] = mean;
    v[i] = square;
    w[i] = weight - 1e-3f * mean / (std::sqrt(square) * 31.6f + 1e-8f);
  }
}

#if defined(__x86_64__)
__attribute__((target("avx512f"))) void AdamRangeAvx512(float* const* s, int64_t begin,
                                                        int64_t end, bool prefetch) {
  float* g = s[0];
  float* w = s[1];
  float* m = s[2];
  float* v = s[3];
  for (int64_t i = begin; i < end; i += 16) {
    if (prefetch) {
      for (int k = 0; k < 4; ++k) __builtin_prefetch(s[k] + i + 1024, 1, 1);
    }
    const __m512 weight = _mm512_loadu_ps(w + i);
    const __m512 grad = _mm512_loadu_ps(g + i);
    __m512 mean = _mm512_loadu_ps(m + i);
    mean = _mm512_fmadd_ps(_mm512_set1_ps(0.1f), _mm512_sub_ps(grad, mean), mean);
    const __m512 square = _mm512_add_ps(
        _mm512_mul_ps(_mm512_loadu_ps(v + i), _mm512_set1_ps(0.999f)),
        _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.001f), grad), grad));
    _mm512_storeu_ps(m + i, mean);
    _mm512_storeu_ps(v + i, square);
    const __m512 denominator = _mm512_add_ps(
        _mm512_mul_ps(_mm512_sqrt_ps(square), _mm512_set1_ps(31.6f)), _mm512_set1_ps(1e-8f));
    _mm512_storeu_ps(w + i, _mm512_add_ps(weight, _mm512_div_ps(_mm512_mul_ps(
                                                      _mm512_set1_ps(-1e-3f), mean), denominator)));
  }
}
#endif

ProbeFn SelectAdamProbe(int reads, int writes) {
  if (reads != 1 || writes != 3) return nullptr;
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512f")) return &AdamRangeAvx512;
#endif
  return &AdamRangePortable;
}

template <int R, int W>
ProbeFn ProbeFor(bool non_temporal) {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512f")) {
    return non_temporal ? &ProbeRangeAvx512<R, W, true> : &ProbeRangeAvx512<R, W, false>;
  }
#endif
  return &ProbeRangePortable<R, W>;
}

// The mixes bench_step.py measures: up to 3 read-only and 3 read-written streams.
ProbeFn SelectProbe(int reads, int writes, bool non_temporal) {
  static constexpr int kMax = 3;
  if (reads > kMax || writes > kMax) return nullptr;
  using Row = ProbeFn (*)(bool);
  static const Row table[kMax + 1][kMax] = {
      {&ProbeFor<0, 1>, &ProbeFor<0, 2>, &ProbeFor<0, 3>},
      {&ProbeFor<1, 1>, &ProbeFor<1, 2>, &ProbeFor<1, 3>},
      {&ProbeFor<2, 1>, &ProbeFor<2, 2>, &ProbeFor<2, 3>},
      {&ProbeFor<3, 1>, &ProbeFor<3, 2>, &ProbeFor<3, 3>},
  };
  return table[reads][writes - 1](non_temporal);
}

// Runs `probe` over the first elements / 16 * 16 elements of every stream on TF's pool: with the
// SM3 kernels' tiling (chunks_per_thread 0), or that many contiguous chunks per pool thread. A
// tail of fewer than 16 elements is left out.
void StreamInChunks(const Workers& workers, ProbeFn probe, float* const* pointers,
                    int64_t elements, int64_t chunks_per_thread, bool prefetch) {
  const int64_t packets = elements / 16;
  if (packets == 0) return;
  const int64_t chunks =
      chunks_per_thread > 0
          ? std::min<int64_t>(packets, chunks_per_thread * workers.num_threads())
          : std::max<int64_t>(1, std::min<int64_t>(elements / kMinTileElements,
                                                   kTilesPerThread * workers.num_threads()));
  workers.ForEachUnit(chunks, [&](int64_t chunk) {
    probe(pointers, 16 * (packets * chunk / chunks), 16 * (packets * (chunk + 1) / chunks),
          prefetch);
  });
}

class Sm3StreamProbeOp : public tensorflow::OpKernel {
 public:
  explicit Sm3StreamProbeOp(tensorflow::OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("reads", &reads_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("writes", &writes_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("elements", &elements_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("skew", &skew_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("prefetch", &prefetch_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("non_temporal", &non_temporal_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("adam", &adam_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("chunks_per_thread", &chunks_per_thread_));
    probe_ = adam_ ? SelectAdamProbe(reads_, writes_) : SelectProbe(reads_, writes_, non_temporal_);
    OP_REQUIRES(ctx, probe_ != nullptr,
                absl::InvalidArgumentError(
                    "`reads` and `writes` must be at most 3 each (`adam`: 1 and 3)."));
  }

  void Compute(OpKernelContext* ctx) override {
    LockedVariables locked;
    OP_REQUIRES_OK(ctx, locked.Acquire(ctx, {{0, "memory"}}, /*sparse=*/false,
                                       /*use_locking=*/true));
    Tensor& memory = locked.tensor(0);
    const int64_t stride = StreamStride(elements_, skew_);
    const int streams = reads_ + writes_;
    OP_REQUIRES(ctx, memory.dtype() == tensorflow::DT_FLOAT,
                absl::InvalidArgumentError("`memory` must be float32."));
    float* base = memory.flat<float>().data();
    // Align the first stream to 64 bytes; every stride is a multiple of 16 floats.
    const int64_t lead = (64 - reinterpret_cast<uintptr_t>(base) % 64) % 64 / sizeof(float);
    OP_REQUIRES(ctx, memory.NumElements() >= lead + streams * stride,
                absl::InvalidArgumentError(absl::StrCat(
                    "`memory` must hold at least ", lead + streams * stride, " floats for ",
                    streams, " streams of ", elements_, " (skew ", skew_, ").")));
    float* pointers[6];
    for (int s = 0; s < streams; ++s) pointers[s] = base + lead + s * stride;
    StreamInChunks(Workers(ctx), probe_, pointers, elements_, chunks_per_thread_, prefetch_);
  }

 private:
  int reads_ = 0, writes_ = 1;
  int64_t elements_ = 0, skew_ = 0, chunks_per_thread_ = 0;
  bool prefetch_ = true, non_temporal_ = false, adam_ = false;
  ProbeFn probe_ = nullptr;
};

REGISTER_KERNEL_BUILDER(Name("Sm3>StreamProbe").Device(tensorflow::DEVICE_CPU),
                        Sm3StreamProbeOp);

// The probe's bare loop over a step's own tensors (Sm3>StreamOn).
class Sm3StreamOnOp : public tensorflow::OpKernel {
 public:
  explicit Sm3StreamOnOp(tensorflow::OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("N", &reads_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("M", &writes_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("prefetch", &prefetch_));
    probe_ = SelectProbe(reads_, writes_, /*non_temporal=*/false);
    OP_REQUIRES(ctx, probe_ != nullptr,
                absl::InvalidArgumentError("at most 3 `reads` and 3 `variables`."));
  }

  void Compute(OpKernelContext* ctx) override {
    std::vector<VariableInput> inputs;
    for (int k = 0; k < writes_; ++k) {
      inputs.push_back({reads_ + k, absl::StrCat("variables[", k, "]")});
    }
    LockedVariables locked;
    OP_REQUIRES_OK(ctx, locked.Acquire(ctx, inputs, /*sparse=*/false, /*use_locking=*/true));
    float* pointers[6];
    int64_t elements = -1;
    auto take = [&](const Tensor& tensor, const std::string& name, int slot) -> absl::Status {
      if (tensor.dtype() != tensorflow::DT_FLOAT) {
        return absl::InvalidArgumentError(absl::StrCat("`", name, "` must be float32."));
      }
      if (elements >= 0 && tensor.NumElements() != elements) {
        return absl::InvalidArgumentError(absl::StrCat("`", name, "` has ", tensor.NumElements(),
                                                       " elements, the first input ", elements));
      }
      elements = tensor.NumElements();
      pointers[slot] = const_cast<float*>(tensor.flat<float>().data());
      return absl::OkStatus();
    };
    for (int k = 0; k < reads_; ++k) {
      OP_REQUIRES_OK(ctx, take(ctx->input(k), absl::StrCat("reads[", k, "]"), k));
    }
    for (int k = 0; k < writes_; ++k) {
      OP_REQUIRES_OK(ctx, take(locked.tensor(k), inputs[k].name, reads_ + k));
    }
    StreamInChunks(Workers(ctx), probe_, pointers, elements, /*chunks_per_thread=*/0, prefetch_);
  }

 private:
  int reads_ = 0, writes_ = 1;
  bool prefetch_ = true;
  ProbeFn probe_ = nullptr;
};

REGISTER_KERNEL_BUILDER(Name("Sm3>StreamOn").Device(tensorflow::DEVICE_CPU), Sm3StreamOnOp);

}  // namespace
}  // namespace sm3
