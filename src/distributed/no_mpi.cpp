// world() in a build without MPI: one process, and a refusal when mpirun started several.
#include <string>

#include "distributed/launch.h"
#include "reskit/distributed/communicator.h"

namespace reskit::distributed {

bool built_with_mpi() { return false; }

Communicator& world() {
  const int n = detail::launcher_world_size();
  if (n > 1) {
    throw DistributedError("this reskit was built without MPI, but mpirun started it as one of " +
                           std::to_string(n) +
                           " processes; each would train alone. Rebuild with Open MPI (scripts/setup.sh "
                           "installs libopenmpi-dev; CMake -DRESKIT_MPI=ON) or run one process");
  }
  return single_process();
}

}  // namespace reskit::distributed
