// reskit/training/curves.h — training curves as an SVG picture: loss and accuracy per epoch (training
// and validation), two panels side by side, like the matplotlib plots of a Keras History.
#pragma once

#include <string>

#include "reskit/training/fit.h"

namespace reskit {

// The SVG text for a History; throws ConfigError when it has no epochs.
std::string history_svg(const History& history, const std::string& title = "");
// Writes history_svg to path (through a temporary file).
void plot_history(const History& history, const std::string& path, const std::string& title = "");

}  // namespace reskit
