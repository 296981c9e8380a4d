// reskit/graph/model.h — the functional API: symbolic tensors, Model.
//
// Input(shape) (reskit/layers/core.h, included here) returns a symbolic tensor; calling layers
// on symbolic tensors records nodes;
// Model(inputs, outputs, name) walks back from the outputs and orders the layers exactly as
// Keras 2.x does (by depth from the outputs, then by discovery order), which is also the order
// summary() prints and files store. forward() runs nodes in that order, backward() in reverse.
#pragma once

#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "reskit/layers/core.h"  // Input
#include "reskit/layers/layer.h"
#include "reskit/tensor.h"

namespace reskit {

class Optimizer;
class Loss;

namespace graph {
// One call of a layer on symbolic tensors.
struct Node {
  std::shared_ptr<Layer> layer;
  int node_index = 0;          // among the calls of this layer (Keras's node index)
  std::vector<Tensor> inputs;  // symbolic inputs; empty for an input node
  Shape output_shape;
};

// One node of a Model, as Model::nodes() lists them (a layer has one output).
struct ModelNode {
  std::shared_ptr<Layer> layer;
  int node_index = 0;       // among the calls of this layer (Keras's node index)
  std::vector<int> inputs;  // per input, the position in Model::nodes() of the node it comes from
  Shape output_shape;       // batch -1
};
}  // namespace graph

// How Model::backward starts and what it returns (Keras's names).
struct BackwardOptions {
  // grad_output is the gradient of the output layer's logits (its softmax's input), not of its
  // output; the output layer must end in a softmax.
  bool from_logits = false;
  // Compute the gradients of the model's inputs; false returns undefined tensors and spares the
  // first layers work.
  bool input_gradients = true;
  // Add the gradients of the regularization losses (Keras's model.losses): each activity
  // regularizer's at its layer's output (as of the last forward), each weight regularizer's to
  // its trainable Param's grad (reskit/optim/regularizers.h). train_on_batch sets it.
  bool regularization = false;
  // What those gradients are multiplied by: in data-parallel training each replica's share of the
  // global batch, so that the sum over the replicas counts each penalty once.
  double regularization_scale = 1.0;
  // Called after each layer's backward with that layer, its parameter gradients final (weight
  // penalties added): data-parallel training starts summing them there.
  std::function<void(const Layer&)> after_layer_backward;
};

// What one training or evaluation step reports.
struct StepResult {
  double loss = 0.0;
  double accuracy = 0.0;
  double top_k_accuracy = 0.0;  // when compiled with "top_k_categorical_accuracy" (k = 5)
};

// Data-parallel training (reskit/distributed/data_parallel.h) in train_on_batch: the loss
// gradient is multiplied by loss_gradient_scale (this replica's share of the global batch),
// before_backward sees the trainable parameters before backward assigns their gradients (where the
// gradients are to be written), after_backward sees them, gradients assigned, before the optimizer
// step (the gradient allreduce); after_layer_backward goes to backward (BackwardOptions).
// Defaults: 1 and nothing.
struct TrainStepHooks {
  double loss_gradient_scale = 1.0;
  std::function<void(const std::vector<Param*>&)> before_backward;
  std::function<void(const std::vector<Param*>&)> after_backward;
  std::function<void(const Layer&)> after_layer_backward;
};

class Model {
 public:
  Model(const Tensor& input, const Tensor& output, std::string name = "");
  Model(std::vector<Tensor> inputs, std::vector<Tensor> outputs, std::string name = "");

  const std::string& name() const;
  // Layers in Keras order (model.layers).
  const std::vector<std::shared_ptr<Layer>>& layers() const;
  // The layer of that name (Keras model.get_layer); ConfigError naming the model, the name and
  // the nearest names it has when there is none.
  std::shared_ptr<Layer> get_layer(std::string_view name) const;
  // Keras model.trainable = value: sets every layer's flag (Layer::set_trainable). Training reads
  // the flags at each step, without compiling again; the optimizer keeps its slots.
  void set_trainable(bool trainable);
  const std::vector<Tensor>& inputs() const;
  const std::vector<Tensor>& outputs() const;
  DType dtype() const;
  // The graph's nodes in execution order, each after the nodes it reads: the one walk of the
  // graph that files, plots and exports read.
  const std::vector<graph::ModelNode>& nodes() const;
  // Positions in nodes() of the inputs' and outputs' nodes, in the order of inputs() and outputs().
  const std::vector<int>& input_nodes() const;
  const std::vector<int>& output_nodes() const;
  // The node that calls this layer of the model (there is one: shared layers are refused).
  const graph::ModelNode& node_of(const Layer& layer) const;

  // Runs the model on concrete inputs (shapes checked against the model's inputs).
  Tensor forward(const Tensor& x, bool training = false);
  std::vector<Tensor> forward(const std::vector<Tensor>& xs, bool training);
  Tensor operator()(const Tensor& x) { return forward(x, false); }
  // Backward from the gradient of the single output (or of its logits: see BackwardOptions);
  // returns the gradients of the inputs. Parameter gradients are assigned.
  std::vector<Tensor> backward(const Tensor& grad_output, BackwardOptions options = {});

  // Every parameter, in layer order, then weight order.
  std::vector<Param*> parameters();
  // Those that train now (Layer::trains): what the optimizer updates and files keep slots for.
  std::vector<Param*> trainable_parameters();
  std::int64_t count_params() const;
  std::int64_t count_trainable_params() const;

  // The Keras table (tf.keras 2.x print_summary), byte for byte.
  void summary(std::ostream& out) const;
  void summary() const;
  std::string summary_string() const;

  // Keras compile: the optimizer and loss used by train_on_batch; metrics: "accuracy".
  void compile(std::shared_ptr<Optimizer> optimizer, std::shared_ptr<Loss> loss,
               std::vector<std::string> metrics = {});
  // One step: forward in training mode, loss, backward, optimizer update, constraints. The loss
  // includes the regularization penalties (Keras's model.losses), as does test_on_batch's.
  StepResult train_on_batch(const Tensor& x, const Tensor& y);
  // Loss and metrics of a batch in inference mode.
  StepResult test_on_batch(const Tensor& x, const Tensor& y);
  void set_train_step_hooks(TrainStepHooks hooks);
  Optimizer& optimizer();
  bool compiled() const;
  const Loss& loss() const;
  const std::vector<std::string>& metrics() const;
  // Set by a callback to end fit() after the current epoch (Keras model.stop_training).
  bool stop_training = false;
  // Time spent per layer class and pass ("Conv2D forward", "Conv2D backward", "optimizer"), in
  // seconds, accumulated while profiling is on (reskit bench --profile); by_layer: per layer and
  // pass instead ("Conv2D conv_3a2a backward", reskit bench --profile-layers).
  void set_profiling(bool on, bool by_layer = false);
  // ReLU fusion (on by default): a BatchNormalization or Add whose output only a ReLU
  // Activation reads applies that ReLU in its own pass, and the Activation passes it on; a
  // BatchNormalization that alone feeds a two-input Add also does the addition. The results are
  // the same (tests compare both), with one pass and one tensor fewer per fused pair.
  void set_fuse_relu(bool on);
  bool fuse_relu() const;
  // Mixed precision, training (on by default): a BatchNormalization whose output only Conv2Ds
  // read (after the ReLU it applies), or whose input gradient only the Conv2D before it reads,
  // writes that tensor as its bfloat16 rounding alone: all those readers take
  // (Tensor::bf16_shadow_only_written). The same bits as off (tests compare both), with 4 of
  // 6 bytes per value not written; a float32 reader elsewhere would get the values widened.
  void set_bf16_only(bool on);
  bool bf16_only() const;
  // Mixed precision, training (on by default): Keras's bfloat16 activations between a linear
  // Conv2D and a BatchNormalization. The Conv2D writes its output as the bfloat16 rounding alone
  // where a BatchNormalization alone reads it, and its input gradient where it alone reads a
  // BatchNormalization's output (after the ReLU that applies, while fused); the normalization
  // computes on those rounded values, as Keras's does on its bfloat16 inputs. In residual
  // blocks the gradient of a block's output is bfloat16 as in Keras: a ReLU after an Add writes
  // its input gradient as the rounding alone where every input of the Add reads that, and a
  // linear Conv2D reading such a ReLU's output writes its input gradient so. Unlike
  // set_bf16_only this changes the numerics; off, those tensors stay float32.
  void set_bf16_activations(bool on);
  bool bf16_activations() const;
  // BatchNormalization folding in inference (on by default): a linear Conv2D whose output only a
  // BatchNormalization reads runs with the normalization folded into its kernel and bias (and
  // the ReLU after it as a post-op), and the normalization passes its input on. The results
  // equal the unfolded ones up to rounding. backward() after such a forward throws.
  void set_fold_batch_norm(bool on);
  bool fold_batch_norm() const;
  std::map<std::string, double> profile() const;
  // Keras's Sequential: set on a model loaded from a Sequential config (or by the caller on a
  // chain of single-input layers from one InputLayer); summary() then leaves out the InputLayer
  // row, as Sequential.summary() does, and save_model/model_to_json write a Sequential config.
  // ConfigError when the model is not such a chain.
  void set_sequential(bool on);
  bool sequential() const;
  // Names of the output classes, when known (from the training data); saved with the model.
  const std::vector<std::string>& class_names() const;
  void set_class_names(std::vector<std::string> names);

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace reskit
