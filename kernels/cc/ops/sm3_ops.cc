/* Op definitions of the fused SM3 steps (kernels in ../kernels/sm3_kernels.cc) and of the ISA
query (../kernels/kernel_isa.cc). Names are namespaced TF Addons-style ("Sm3>..."); Python sees
them as sm3_resource_apply_dense, sm3_resource_apply_sparse and sm3_kernel_isa.

The hyper-parameters are float64 scalar tensors, not attributes: the v1 optimizer may pass tensors,
and a learning-rate schedule changes every step without retracing. float64 keeps Python numbers
exact until the kernel rounds them to the compute type, as the TF-ops path does.
*/
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace sm3 {
namespace {

using tensorflow::shape_inference::InferenceContext;
using tensorflow::shape_inference::ShapeHandle;

// lr, momentum, beta_2 and epsilon are the last four inputs and must be scalars.
absl::Status CheckScalarInputs(InferenceContext* c) {
  ShapeHandle unused;
  for (int i = c->num_inputs() - 4; i < c->num_inputs(); ++i) {
    TF_RETURN_IF_ERROR(c->WithRank(c->input(i), 0, &unused));
  }
  return absl::OkStatus();
}

// The variable's shape, when the handle carries it (it does for variables created in the graph).
bool VariableShape(InferenceContext* c, ShapeHandle* shape) {
  const auto* handle_data = c->input_handle_shapes_and_types(0);
  if (handle_data == nullptr || handle_data->empty()) return false;
  *shape = (*handle_data)[0].shape;
  return true;
}

absl::Status DenseShapeFn(InferenceContext* c) {
  TF_RETURN_IF_ERROR(CheckScalarInputs(c));
  int num_accumulators = 0, num_buffers = 0;
  TF_RETURN_IF_ERROR(c->GetAttr("num_accumulators", &num_accumulators));
  TF_RETURN_IF_ERROR(c->GetAttr("num_buffers", &num_buffers));
  ShapeHandle var_shape, unused;
  if (VariableShape(c, &var_shape)) {
    TF_RETURN_IF_ERROR(c->Merge(var_shape, c->input(1 + num_accumulators + num_buffers), &unused));
  }
  return absl::OkStatus();
}

absl::Status SparseShapeFn(InferenceContext* c) {
  TF_RETURN_IF_ERROR(CheckScalarInputs(c));
  int num_buffers = 0;
  TF_RETURN_IF_ERROR(c->GetAttr("num_buffers", &num_buffers));
  const int values_index = 2 + num_buffers;
  ShapeHandle indices, unused;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(values_index + 1), 1, &indices));
  TF_RETURN_IF_ERROR(c->WithRankAtLeast(c->input(values_index), 1, &unused));
  TF_RETURN_IF_ERROR(c->Merge(c->Vector(c->Dim(c->input(values_index), 0)), indices, &unused));
  return absl::OkStatus();
}

}  // namespace
}  // namespace sm3

REGISTER_OP("Sm3>ResourceApplyDense")
    .Input("var: resource")
    .Input("accumulators: num_accumulators * resource")
    .Input("momentum_buffer: num_buffers * resource")
    .Input("grad: T")
    .Input("lr: double")
    .Input("momentum: double")
    .Input("beta_2: double")
    .Input("epsilon: double")
    .Attr("T: {half, bfloat16, float, double}")
    .Attr("num_accumulators: int >= 1")
    .Attr("num_buffers: int >= 0")
    .Attr("sm3_variant: {'I', 'II'} = 'II'")
    .Attr("use_locking: bool = false")
    .SetShapeFn(sm3::DenseShapeFn)
    .Doc(R"doc(
One SM3 step (Anil et al. 2019) on `var` in place, with a dense gradient.

var: the parameter (float16, bfloat16, float32 or float64).
accumulators: the covers: one vector per axis (shape [d_i]) for rank >= 2, else one variable of
  var's shape; float64 for a float64 var, else float32.
momentum_buffer: zero variables (no momentum) or one of var's shape, of any float type.
grad: the gradient, var's shape.
lr: the learning rate.
momentum: in [0, 1); read only when there is a momentum buffer.
beta_2: in (0, 1]; 1 keeps the paper's running sums.
epsilon: added to nu under the square root (p = 0 where nu + epsilon == 0).
sm3_variant: "II" (nu from the covers, covers = maxima of nu) or "I". ("variant" is a dtype name.)
use_locking: as in TF's training ops; dense steps always lock resource variables exclusively.
)doc");

REGISTER_OP("Sm3>ResourceApplySparse")
    .Input("var: resource")
    .Input("row_accumulator: resource")
    .Input("momentum_buffer: num_buffers * resource")
    .Input("values: T")
    .Input("indices: Tindices")
    .Input("lr: double")
    .Input("momentum: double")
    .Input("beta_2: double")
    .Input("epsilon: double")
    .Attr("T: {half, bfloat16, float, double}")
    .Attr("Tindices: {int32, int64}")
    .Attr("num_buffers: int >= 0")
    .Attr("sm3_variant: {'I', 'II'} = 'II'")
    .Attr("use_locking: bool = false")
    .SetShapeFn(sm3::SparseShapeFn)
    .Doc(R"doc(
One SM3 step on the rows of `var` named by `indices`: only those rows of var, of the axis-0 cover
and of momentum_buffer are read and written. As in the authors' implementation the rows alone
cover the touched entries: SM3-II nu = beta_2 * acc_0[row] + w_new * g^2, acc_0[row] = max of nu
over the row; SM3-I acc_0[row] = beta_2 * acc_0[row] + w_new * max of g^2 over the row,
nu = acc_0[row]. The other covers are neither read nor written.

row_accumulator: the axis-0 cover (accumulators[0]), shape [var.shape[0]].

values: the gradient rows, shape [len(indices)] + var.shape[1:].
indices: unique row indices into var's axis 0 (sum duplicate rows first).
use_locking: false takes shared locks, as TF's sparse training ops do.
Other arguments as in Sm3>ResourceApplyDense.
)doc");

REGISTER_OP("Sm3>KernelIsa")
    .Output("isa: string")
    .SetIsStateful()  // its answer follows SM3_TF_KERNEL_ISA: never constant-fold or cache it
    .SetShapeFn(tensorflow::shape_inference::ScalarShape)
    .Doc(R"doc(
The instruction set of the SM3 kernels' loops here: "avx512", "avx", "sse2" or "portable".
)doc");
