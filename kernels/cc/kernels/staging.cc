/* Conversions between the storage types SM3 accepts and the compute types float and double.

Eigen's half and bfloat16 conversions round to nearest even, as tf.cast does, so a bfloat16
weight or momentum buffer is rounded exactly as on the TF-ops path.
*/
#define EIGEN_USE_THREADS

#include "staging.h"

#include "tensorflow/core/framework/numeric_types.h"
#include "tensorflow/core/platform/logging.h"

namespace sm3 {
namespace {

template <typename Storage, typename C>
void LoadTyped(const void* source, int64_t offset, int64_t size, C* destination) {
  const Storage* from = static_cast<const Storage*>(source) + offset;
  for (int64_t i = 0; i < size; ++i) destination[i] = static_cast<C>(from[i]);
}

template <typename Storage, typename C>
void StoreTyped(const C* source, int64_t size, void* destination, int64_t offset) {
  Storage* to = static_cast<Storage*>(destination) + offset;
  for (int64_t i = 0; i < size; ++i) to[i] = static_cast<Storage>(source[i]);
}

}  // namespace

template <typename C>
void LoadAs(const TypedArray& source, int64_t offset, int64_t size, C* destination) {
  switch (source.dtype) {
    case tensorflow::DT_FLOAT:
      return LoadTyped<float>(source.data, offset, size, destination);
    case tensorflow::DT_DOUBLE:
      return LoadTyped<double>(source.data, offset, size, destination);
    case tensorflow::DT_HALF:
      return LoadTyped<Eigen::half>(source.data, offset, size, destination);
    case tensorflow::DT_BFLOAT16:
      return LoadTyped<Eigen::bfloat16>(source.data, offset, size, destination);
    default:
      // The kernels check every dtype before touching data; reaching here is a bug.
      LOG(FATAL) << "SM3 kernel: unsupported storage type "
                 << tensorflow::DataTypeString(source.dtype);
  }
}

template <typename C>
void StoreAs(const C* source, int64_t size, const TypedArray& destination, int64_t offset) {
  switch (destination.dtype) {
    case tensorflow::DT_FLOAT:
      return StoreTyped<float>(source, size, destination.data, offset);
    case tensorflow::DT_DOUBLE:
      return StoreTyped<double>(source, size, destination.data, offset);
    case tensorflow::DT_HALF:
      return StoreTyped<Eigen::half>(source, size, destination.data, offset);
    case tensorflow::DT_BFLOAT16:
      return StoreTyped<Eigen::bfloat16>(source, size, destination.data, offset);
    default:
      LOG(FATAL) << "SM3 kernel: unsupported storage type "
                 << tensorflow::DataTypeString(destination.dtype);
  }
}

template void LoadAs<float>(const TypedArray&, int64_t, int64_t, float*);
template void LoadAs<double>(const TypedArray&, int64_t, int64_t, double*);
template void StoreAs<float>(const float*, int64_t, const TypedArray&, int64_t);
template void StoreAs<double>(const double*, int64_t, const TypedArray&, int64_t);

}  // namespace sm3
