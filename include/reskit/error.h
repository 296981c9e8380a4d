// reskit/error.h — the one exception hierarchy of reskit.
//
// Every message names the place (a layer, a file, a flag), what was expected and what was
// received: "Conv2D 'conv_2a2a': expected 64 input channels, got 3". The library never exits;
// the CLI catches reskit::Error, prints what() and exits non-zero.
#pragma once

#include <stdexcept>
#include <string>

namespace reskit {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A tensor or layer received a shape it cannot take.
class ShapeError : public Error {
 public:
  using Error::Error;
};

// A configuration value (layer option, model option, flag) is out of range or unknown.
class ConfigError : public Error {
 public:
  using Error::Error;
};

// A file could not be read or written, or its content is malformed.
class FileError : public Error {
 public:
  using Error::Error;
};

// What was asked needs more memory than there is (checked before allocating it).
class ResourceError : public Error {
 public:
  using Error::Error;
};

}  // namespace reskit
