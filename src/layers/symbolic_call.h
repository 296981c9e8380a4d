// What the layers need from the graph, declared on their side so that no layer includes
// reskit/graph/model.h: recording one call of a layer on symbolic tensors. The graph owns the
// Node type and defines this (src/graph/model.cpp); Layer::call and Input() use it. Not part of
// the public API.
#pragma once

#include <memory>
#include <vector>

#include "reskit/layers/layer.h"
#include "reskit/tensor.h"

namespace reskit::detail {

// The symbolic output of call `node_index` of `layer` (Keras's node index) on symbolic `inputs`
// (none for an input layer), of shape `output_shape` (batch -1) and the layer's dtype.
Tensor record_call(std::shared_ptr<Layer> layer, int node_index, std::vector<Tensor> inputs,
                   Shape output_shape);

}  // namespace reskit::detail
