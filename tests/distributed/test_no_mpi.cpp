// A reskit built without MPI (src/distributed/no_mpi.cpp) runs alone, and refuses when mpirun
// started it as one of several processes instead of training independent copies.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "reskit/distributed/communicator.h"

namespace {

namespace dist = reskit::distributed;

TEST(NoMpiBuild, RunsAloneWithoutALauncher) {
  ::unsetenv("OMPI_COMM_WORLD_SIZE");
  ::unsetenv("PMI_SIZE");
  EXPECT_FALSE(dist::built_with_mpi());
  EXPECT_EQ(dist::world().size(), 1);
  EXPECT_EQ(dist::world().rank(), 0);
  ::setenv("OMPI_COMM_WORLD_SIZE", "1", 1);  // mpirun -np 1: one process, fine
  EXPECT_EQ(dist::world().size(), 1);
  ::unsetenv("OMPI_COMM_WORLD_SIZE");
}

TEST(NoMpiBuild, RefusesSeveralProcessesUnderMpirun) {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}) {
    ::setenv(var, "3", 1);
    try {
      dist::world();
      ADD_FAILURE() << "no error with " << var;
    } catch (const dist::DistributedError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("built without MPI, but mpirun started it as one of 3 processes"), std::string::npos)
          << m;
    }
    ::unsetenv(var);
  }
}

}  // namespace
