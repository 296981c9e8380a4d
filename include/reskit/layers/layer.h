// reskit/layers/layer.h — the layer contract, named parameters and the handle users call.
//
// A layer is created with a config whose defaults are Keras's, validated in its constructor. It
// creates its weights lazily in build(input_shapes). output_shape() is pure shape inference
// (batch dimension included, -1 for None) and throws ShapeError naming the layer, what it
// expected and what it got.
//
// Backward contract: forward(inputs, training) keeps exactly what backward needs (one pending
// call per layer); backward(grad_output) *returns* fresh gradients for each input and *assigns*
// the gradient of every trainable parameter. Summing gradients over several consumers of a
// tensor is the graph's job.
//
// Calling a layer (through its handle, e.g. Conv2D(64, {3, 3})(x)) on a symbolic tensor adds a
// node to the graph; on a concrete tensor it builds the layer and runs it at once in inference
// mode, as Keras does for eager calls.
//
// Frozen layers (Keras layer.trainable = False, TF2 semantics): set_trainable(false) keeps every
// weight of the layer out of training (the optimizer skips it), summaries count them as
// non-trainable, files save "trainable": false, and a frozen BatchNormalization runs in inference
// mode even in a training pass. The flag is read at each training step.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "reskit/optim/constraints.h"
#include "reskit/optim/regularizers.h"
#include "reskit/tensor.h"

namespace reskit {

// A named weight. The name is Keras's ("conv1/kernel:0"); optimizers and file formats use it.
struct Param {
  std::string name;
  Tensor value;
  Tensor grad;  // same shape as value; assigned by backward for trainable parameters
  // Whether the weight is trainable in itself (BatchNormalization's moving statistics are not);
  // it trains when its layer is trainable() too (Layer::trains).
  bool trainable = true;
  // Keras's weight regularizer and constraint (kernel_regularizer, kernel_constraint, ...), set
  // from the layer's options when it builds the weight: training adds the penalty to the loss
  // and its gradient to grad, and applies the constraint after each update; files save them.
  std::optional<Regularizer> regularizer;
  std::optional<Constraint> constraint;
};

class Layer : public std::enable_shared_from_this<Layer> {
 public:
  // An empty name gives the Keras auto-name (snake_case class name, then _1, _2, ...).
  Layer(std::string class_name, std::string name);
  virtual ~Layer() = default;
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  const std::string& name() const { return name_; }
  const std::string& class_name() const { return class_name_; }
  // The element type of the layer's weights and outputs: floatx() when it was created.
  DType dtype() const { return dtype_; }
  // Whether the global policy was "mixed_bfloat16" when it was created (set_global_policy):
  // Conv2D then computes in bfloat16.
  bool mixed_bfloat16() const { return mixed_bfloat16_; }
  // "Conv2D 'conv1'": how messages name this layer.
  std::string where() const;

  // Number of inputs a call takes; kAnyInputs means two or more (merge layers).
  static constexpr int kAnyInputs = -1;
  virtual int expected_inputs() const { return 1; }
  virtual Shape output_shape(const std::vector<Shape>& inputs) const = 0;

  // Creates the weights for these input shapes; later calls check the shapes still fit.
  void build(const std::vector<Shape>& inputs);
  bool built() const { return built_; }

  virtual Tensor forward(const std::vector<Tensor>& inputs, bool training) = 0;
  virtual std::vector<Tensor> backward(const Tensor& grad_output) = 0;
  // backward(a + b): the output feeds two nodes and a, b are their gradients, a the first to
  // arrive. The model calls this instead of summing them itself, so that a layer can add them in
  // its own pass (Activation's ReLU: one pass instead of two, the same bits).
  virtual std::vector<Tensor> backward_sum(const Tensor& a, const Tensor& b);

  // Layers whose output is a softmax (Activation("softmax"), Dense with activation="softmax")
  // let a cross-entropy loss work from the logits, as Keras does: logits() is the pre-softmax
  // tensor of the last forward, backward_from_logits the backward from its gradient.
  virtual bool outputs_softmax() const { return false; }
  virtual Tensor logits() const;
  virtual std::vector<Tensor> backward_from_logits(const Tensor& grad_logits);
  // Keras's activity_regularizer, a penalty on the layer's output (reskit/optim/regularizers.h);
  // null when the layer has none.
  virtual const Regularizer* activity_regularizer() const { return nullptr; }

  // Whether backward must compute the gradients of the inputs (the model clears it for layers
  // that read only model inputs when nobody asks for those gradients, as in a training step).
  // Layers may then return undefined tensors for them; conv skips its backward-data pass.
  bool input_gradients_needed() const { return input_gradients_needed_; }
  void set_input_gradients_needed(bool needed) { input_gradients_needed_ = needed; }

  // ReLU fusion, set by the model around its forward pass (Model::set_fuse_relu): while
  // fused_relu() is set, a layer that can (BatchNormalization, Add; the layer registry says which)
  // applies the ReLU that alone consumes its output in its own pass, and that Activation passes
  // its input on. With `backward` too (training passes, BatchNormalization), the producer's next
  // backward also takes the ReLU's backward and the Activation's passes its gradient on; both
  // layers note this in their forward pass.
  void set_fused_relu(bool on, bool backward = false) {
    fused_relu_ = on;
    fused_relu_backward_ = on && backward;
  }
  bool fused_relu() const { return fused_relu_; }
  bool fused_relu_backward() const { return fused_relu_backward_; }

  std::vector<Param>& params() { return params_; }
  const std::vector<Param>& params() const { return params_; }
  // The parameter whose name ends in "/<short_name>:0", e.g. param("kernel").
  Param& param(std::string_view short_name);
  std::int64_t count_params() const;
  // The weights that train: none when the layer is frozen (Keras layer.trainable_weights).
  std::int64_t count_trainable_params() const;

  // Keras layer.trainable (see the header comment); true unless set false.
  bool trainable() const { return trainable_; }
  void set_trainable(bool trainable) { trainable_ = trainable; }
  // Whether weight p of this layer trains: the layer is trainable() and p.trainable.
  bool trains(const Param& p) const { return trainable_ && p.trainable; }

  // The symbolic tensor of the layer's one call on symbolic tensors (Keras layer.output), e.g.
  // model.get_layer("conv4_block6_out")->output(): Model(model.inputs(), that) is a model over
  // part of the graph that shares these layers and their weights. Error when the layer was never
  // called on symbolic tensors, was called more than once, or the graph of that call is gone.
  Tensor output() const;

  // Calls the layer (see the header comment).
  Tensor call(const std::vector<Tensor>& inputs);
  // How many graph nodes call this layer (Keras inbound nodes).
  int node_count() const { return node_count_; }

 protected:
  virtual void do_build(const std::vector<Shape>& /*inputs*/) {}
  // Adds "<layer name>/<short_name>:0", created in the layer's dtype and zero-filled.
  Param& add_param(const std::string& short_name, const Shape& shape, bool trainable);
  // The weight do_build added index-th, for the named accessors of a layer class (DenseLayer's
  // kernel()); Error naming the layer and the weight when it was never built.
  Param& built_param(std::size_t index, std::string_view short_name);
  const Param& built_param(std::size_t index, std::string_view short_name) const;
  // The bias, weight 1 of a layer with a use_bias option (Conv2D, Dense); Error naming the layer
  // when use_bias is false.
  const Param& built_bias(bool use_bias) const;
  // Throws ShapeError "<where>: expected <expected>, got <got>".
  [[noreturn]] void shape_error(const std::string& expected, const std::string& got) const;
  // Checks a single-input call and returns that input's shape.
  const Shape& single_input(const std::vector<Shape>& inputs) const;
  // Remembers the symbolic output of a call (Layer::call; Input() for an InputLayer) for output().
  void keep_output(const Tensor& symbolic);

 private:
  std::string class_name_;
  std::string name_;
  DType dtype_;
  bool mixed_bfloat16_;
  bool built_ = false;
  std::vector<Shape> built_shapes_;
  std::vector<Param> params_;
  int node_count_ = 0;
  // The last call's graph node, held weakly (the node holds the layer), and its output shape.
  std::weak_ptr<graph::Node> output_node_;
  Shape output_shape_;
  bool trainable_ = true;
  bool input_gradients_needed_ = true;
  bool fused_relu_ = false;
  bool fused_relu_backward_ = false;
};

// The handle users hold and call: LayerRef<Conv2DLayer> is what Conv2D(...) returns.
template <class L>
class LayerRef {
 public:
  explicit LayerRef(std::shared_ptr<L> impl) : impl_(std::move(impl)) {}
  Tensor operator()(const Tensor& x) const { return impl_->call({x}); }
  Tensor operator()(const std::vector<Tensor>& xs) const { return impl_->call(xs); }
  L* operator->() const { return impl_.get(); }
  L& operator*() const { return *impl_; }
  const std::shared_ptr<L>& ptr() const { return impl_; }
  operator std::shared_ptr<Layer>() const { return impl_; }

 private:
  std::shared_ptr<L> impl_;
};

// Forget auto-name counters (Keras backend.clear_session()).
void clear_session();
// Keras's snake_case of a class name: "ZeroPadding2D" -> "zero_padding2d".
std::string to_snake_case(std::string_view class_name);

}  // namespace reskit
