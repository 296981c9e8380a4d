// Thread count of the single OpenMP pool; the memory available to allocations.
#include "reskit/runtime.h"

#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <string>

#include "kernels/kernels.h"
#include "reskit/error.h"

namespace reskit {

void set_num_threads(int n) {
  if (n < 1) throw ConfigError("threads: expected a count >= 1, got " + std::to_string(n));
  omp_set_num_threads(n);
}

int num_threads() { return omp_get_max_threads(); }

std::string cpu_isa() { return kernels::cpu_isa(); }
std::string blas_kernels() { return kernels::blas_core(); }
std::string float64_gemm() {
  const std::string kind = kernels::float64_gemm();
  return kind == "OpenBLAS" ? kind + " " + kernels::blas_core() : kind;
}

namespace {
std::int64_t& memory_limit() {
  // RESKIT_MEMORY_LIMIT at start-up: bytes, or with a K, M or G suffix (powers of 1024).
  static std::int64_t limit = [] {
    const char* env = std::getenv("RESKIT_MEMORY_LIMIT");
    if (!env || !*env) return std::int64_t{0};
    char* end = nullptr;
    const double v = std::strtod(env, &end);
    double scale = 1;
    if (*end == 'K' || *end == 'k')
      scale = 1024.0, ++end;
    else if (*end == 'M' || *end == 'm')
      scale = 1024.0 * 1024, ++end;
    else if (*end == 'G' || *end == 'g')
      scale = 1024.0 * 1024 * 1024, ++end;
    if (end == env || *end != '\0' || !(v > 0) || v * scale > 9e18) {
      throw ConfigError(
          std::string("RESKIT_MEMORY_LIMIT: expected a positive size such as 512M or 2G, got '") + env + "'");
    }
    return static_cast<std::int64_t>(v * scale);
  }();
  return limit;
}

// A "<key>: <n> kB" line of /proc/meminfo, in bytes; -1 when absent.
std::int64_t meminfo(const std::string& key) {
  std::ifstream in("/proc/meminfo");
  std::string name, unit;
  long long value = 0;
  while (in >> name >> value) {
    std::getline(in, unit);
    if (name == key + ":") return static_cast<std::int64_t>(value) * 1024;
  }
  return -1;
}

// What the cgroup (v2) lets this process still use; -1 when unlimited or unknown.
std::int64_t cgroup_room() {
  std::ifstream max_in("/sys/fs/cgroup/memory.max"), cur_in("/sys/fs/cgroup/memory.current");
  std::string max_text;
  long long current = 0;
  if (!(max_in >> max_text) || max_text == "max" || !(cur_in >> current)) return -1;
  try {
    return std::max<std::int64_t>(0, std::stoll(max_text) - current);
  } catch (const std::exception&) {
    return -1;
  }
}
}  // namespace

std::int64_t available_memory() {
  std::int64_t room = std::numeric_limits<std::int64_t>::max();
  if (const std::int64_t m = meminfo("MemAvailable"); m >= 0) room = m;
  if (const std::int64_t c = cgroup_room(); c >= 0) room = std::min(room, c);
  rlimit as{};
  if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY)
    room = std::min(room, static_cast<std::int64_t>(std::min<rlim_t>(as.rlim_cur, rlim_t{1} << 62)));
  if (memory_limit() > 0) room = std::min(room, memory_limit());
  return room;
}

void set_memory_limit(std::int64_t bytes) {
  if (bytes < 0) throw ConfigError("memory limit: expected bytes >= 0, got " + std::to_string(bytes));
  memory_limit() = bytes;
}

std::string format_bytes(std::int64_t bytes) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 6) v /= 1024, ++u;
  char buf[64];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%lld bytes", static_cast<long long>(bytes));
  else
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

void check_memory(const std::string& what, std::int64_t bytes) {
  const std::int64_t have = available_memory();
  if (bytes > have) {
    throw ResourceError(what + " needs " + format_bytes(bytes) + ", more than the " + format_bytes(have) +
                        " of memory available");
  }
}

}  // namespace reskit
