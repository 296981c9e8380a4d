// Thread count of the single OpenMP pool.
#include "reskit/runtime.h"

#include <omp.h>

#include <string>

#include "reskit/error.h"

namespace reskit {

void set_num_threads(int n) {
  if (n < 1) throw ConfigError("threads: expected a count >= 1, got " + std::to_string(n));
  omp_set_num_threads(n);
}

int num_threads() { return omp_get_max_threads(); }

}  // namespace reskit
