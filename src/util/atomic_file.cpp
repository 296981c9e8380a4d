// Crash-safe file writes: temporary file, fsync, rename, fsync of the folder.
#include "util/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include "reskit/error.h"

namespace reskit::util {

namespace {
std::atomic<unsigned> g_counter{0};

std::string errno_text() { return std::strerror(errno); }

void fsync_path(const std::string& path, bool directory, const std::string& context) {
  int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDWR);
  if (fd < 0) throw FileError(context + ": cannot open '" + path + "' to flush it: " + errno_text());
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  // Some filesystems refuse fsync on folders (EINVAL); the data itself is already flushed.
  if (rc != 0 && !(directory && (err == EINVAL || err == EBADF))) {
    throw FileError(context + ": cannot flush '" + path + "' to disk: " + std::strerror(err));
  }
}
}  // namespace

void write_atomically(const std::string& path, const std::function<void(const std::string&)>& write) {
  namespace fs = std::filesystem;
  const std::string context = "'" + path + "'";
  if (path.empty()) throw FileError("cannot write a file with an empty path");
  fs::path target(path);
  fs::path folder = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  std::error_code ec;
  if (!fs::is_directory(folder, ec))
    throw FileError(context + ": folder '" + folder.string() + "' does not exist");
  if (fs::is_directory(target, ec)) throw FileError(context + ": is a folder, expected a file path");

  std::random_device rd;
  std::string temp;
  int fd = -1;
  for (int attempt = 0; attempt < 16 && fd < 0; ++attempt) {
    temp = (folder / ("." + target.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-" +
                      std::to_string(g_counter++) + "-" + std::to_string(rd() % 1000000)))
               .string();
    fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) {
      throw FileError(context + ": cannot create a temporary file in '" + folder.string() +
                      "': " + errno_text());
    }
  }
  if (fd < 0) throw FileError(context + ": cannot find a free temporary file name");
  ::close(fd);
  try {
    write(temp);
    fsync_path(temp, false, context);
    if (::rename(temp.c_str(), path.c_str()) != 0) {
      throw FileError(context + ": cannot move the finished temporary file into place: " + errno_text());
    }
  } catch (...) {
    ::unlink(temp.c_str());
    throw;
  }
  fsync_path(folder.string(), true, context);
}

}  // namespace reskit::util
