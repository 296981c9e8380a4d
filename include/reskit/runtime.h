// reskit/runtime.h — threads. reskit has one thread pool (OpenMP), shared by oneDNN, OpenBLAS
// (its OpenMP build) and reskit's own loops; by default it uses every core.
#pragma once

namespace reskit {

// Limits the pool to n threads (n >= 1); throws ConfigError otherwise.
void set_num_threads(int n);
int num_threads();

}  // namespace reskit
