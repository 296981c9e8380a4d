// Crash-safe file writes (internal, shared by io and training): write to a temporary file in the
// destination's folder, flush it to disk, then rename it over the destination. A crash or an
// exception at any point leaves either the old file or the complete new one, never a half-written
// file.
#pragma once

#include <functional>
#include <string>

namespace reskit::util {

// Reserves a fresh temporary file next to `path` (created empty, mode 0666 & ~umask), calls
// write(temp_path) to fill it, fsyncs it, renames it to `path` and fsyncs the folder. On any
// failure the temporary file is removed and the exception (FileError for I/O failures) goes on.
void write_atomically(const std::string& path,
                      const std::function<void(const std::string& temp_path)>& write);

}  // namespace reskit::util
