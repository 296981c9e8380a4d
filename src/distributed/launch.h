// What the launcher's environment says about this process (private to src/distributed/).
#pragma once

namespace reskit::distributed::detail {

// The number of processes mpirun started (Open MPI's OMPI_COMM_WORLD_SIZE, or PMI_SIZE as MPICH's
// and Slurm's launchers set it); 0 when no launcher started this process.
int launcher_world_size();

}  // namespace reskit::distributed::detail
