// reskit/io/h5.h — models and weights in Keras 2.x HDF5 (.h5) files, both ways.
//
// save_model writes what tf.keras 2.6 model.save("x.h5") writes: root attributes keras_version,
// backend, model_config (the model's JSON: Functional, or Sequential for a model marked
// Model::sequential(), as one loaded from a Sequential file is) and, for a compiled model,
// training_config; group model_weights (layer_names; per layer a group with weight_names and one
// dataset per weight, e.g. model_weights/conv1/conv1/kernel:0, HWIO kernels, Dense (in, out),
// BatchNormalization gamma, beta, moving_mean, moving_variance); group optimizer_weights (the
// optimizer's iterations and slots, e.g. Adam/iter:0, Adam/conv1/kernel/m:0) so that training
// resumes exactly where it stopped. reskit adds one root attribute Keras ignores: class_names
// (Model::class_names(), when set).
//
// load_model reads such files, written by reskit or by Keras 2.0.8 … 3.x (legacy .h5): Functional
// ("Model") and Sequential configs (with an InputLayer, batch_input_shape on the first layer, or
// build_input_shape), in the layouts of Keras 2.0–2.2, tf.keras 2.x and Keras 3 (README.md's
// "Keras files"), made of the layer classes keras_layer_classes() lists:
// InputLayer, ZeroPadding2D, Conv2D, BatchNormalization,
// SyncBatchNormalization, Activation, Add, MaxPooling2D,
// AveragePooling2D, GlobalMaxPooling2D, GlobalAveragePooling2D, Flatten, Dense, Dropout, Resizing,
// CenterCrop, RandomFlip, RandomRotation, RandomZoom, RandomTranslation, RandomContrast, Rescaling,
// Normalization, ReLU, LeakyReLU, Softmax and Concatenate (tests/unit/test_registry.cpp holds this
// list to that function, which reads the layer registry). A layer or option reskit cannot reproduce
// exactly is refused with a FileError naming the layer class, its name and the option. Initializers
// in configs are kept when reskit knows them and otherwise ignored (the weights come from the file).
//
// Files are untrusted: every size, rank, string length and shape is checked before use, and a
// corrupt, truncated or hostile file gives a FileError, never a crash (within what the HDF5
// library itself withstands). Every write goes to a temporary file in the same folder that is
// renamed into place once complete.
//
// Not here: ONNX export, plots, data sets (see io/ and data/).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "reskit/graph/model.h"

namespace reskit {

struct SaveModelOptions {
  // Write training_config and optimizer_weights when the model is compiled (Keras
  // include_optimizer).
  bool include_optimizer = true;
};

// Writes the whole model (architecture, weights, compile state) to path.
void save_model(Model& model, const std::string& path, SaveModelOptions options = {});

struct LoadModelOptions {
  // Compile the model from training_config (when present) and restore the optimizer's state.
  // A loss or optimizer reskit lacks is a FileError; pass compile = false to load the model
  // anyway.
  bool compile = true;
};

// Rebuilds the model saved in path, its weights and, if compiled, its optimizer and state.
// Layers are created in the file's dtype (float32 or float64).
Model load_model(const std::string& path, LoadModelOptions options = {});

// Writes only the weights, in the layout of Keras model.save_weights("x.h5"): the content of
// model_weights at the file's root.
void save_weights(const Model& model, const std::string& path);

struct LoadWeightsOptions {
  // Without by_name, the layers that have weights are matched in order (Keras topological
  // order); with by_name, each layer of the file goes to the model's layer of the same name and
  // the others are left alone.
  bool by_name = false;
  // With by_name: every layer of the model that has weights must be in the file, with weights of
  // the same shapes (a Keras Applications weight file and its architecture); the first layer, in
  // model order, that is missing or whose weight differs is named in a FileError. The file's
  // other layers (a top the model lacks) are still left alone.
  bool require_all = false;
};

// Loads weights from a save_weights file or a full model file into model (Keras
// model.load_weights). Every weight's shape is checked before any is changed: on error the model
// is untouched.
void load_weights(Model& model, const std::string& path, LoadWeightsOptions options = {});

// What load_training_state restored of the optimizer: the iterations and, by weight name, the
// slots of the weights that train now. fresh: the weights that train now but had no slots in the
// file (frozen when it was saved; they start with zero slots, as weights do that start training
// in a run); unused_slots: the file's slot weights of weights that do not train now. Both empty
// when the same weights train as when the file was saved.
struct OptimizerRestore {
  bool restored = false;
  std::vector<std::string> fresh;
  std::int64_t unused_slots = 0;
};

// Loads a save_model file's weights and its optimizer's state (iterations, slots) into model,
// which must have the same layers and be compiled with an optimizer of the same kind: a run goes
// on from the file exactly (BackupAndRestore) when the same weights train. When the trainable
// flags changed since (a fine-tuning stage), the slots are restored by weight name (see
// OptimizerRestore). The learning rate and its schedule stay the model's. FileError when the file
// holds no optimizer state that fits; on error the model is untouched.
OptimizerRestore load_training_state(Model& model, const std::string& path);

// The model's Keras JSON (model.to_json()): {"class_name": "Functional" (or "Sequential"), "config": {...}}.
std::string model_to_json(const Model& model);
// Builds a model, with fresh weights, from Keras JSON (model_from_json); ConfigError on problems.
Model model_from_json(const std::string& json);

// The Keras layer class names load_model and model_from_json read (older aliases such as
// Convolution2D aside), in the order of the list above.
std::vector<std::string> keras_layer_classes();

}  // namespace reskit
