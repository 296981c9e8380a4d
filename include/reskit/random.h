// reskit/random.h — the global random generator (Keras/TF tf.random.set_seed).
//
// Initializers and Dropout without an explicit seed draw their seeds from it; the same seed
// and thread count give the same weights.
#pragma once

#include <cstdint>

namespace reskit {

void set_random_seed(std::uint64_t seed);
// The next seed drawn from the global generator.
std::uint64_t next_random_seed();

}  // namespace reskit
