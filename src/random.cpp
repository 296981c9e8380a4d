// The global seed source.
#include "reskit/random.h"

#include <mutex>
#include <random>

namespace reskit {

namespace {
std::mutex g_mutex;
std::mt19937_64 g_generator{0};
}  // namespace

void set_random_seed(std::uint64_t seed) {
  std::lock_guard lock(g_mutex);
  g_generator.seed(seed);
}

std::uint64_t next_random_seed() {
  std::lock_guard lock(g_mutex);
  return g_generator();
}

}  // namespace reskit
