// reskit/reskit.h — everything a program needs: tensors, layers, the functional Model,
// ResNet builders, optimizers and losses.
#pragma once

#include "reskit/data/dataset.h"
#include "reskit/error.h"
#include "reskit/graph/model.h"
#include "reskit/layers/conv.h"
#include "reskit/layers/core.h"
#include "reskit/layers/layer.h"
#include "reskit/layers/normalization.h"
#include "reskit/layers/pooling.h"
#include "reskit/models/registry.h"
#include "reskit/models/resnet.h"
#include "reskit/optim/loss.h"
#include "reskit/optim/optimizer.h"
#include "reskit/optim/schedules.h"
#include "reskit/random.h"
#include "reskit/runtime.h"
#include "reskit/tensor.h"
#include "reskit/training/callbacks.h"
#include "reskit/training/fit.h"
#include "reskit/training/progbar.h"
