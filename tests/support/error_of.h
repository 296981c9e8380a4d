// error_of<E>(f): the message of the E that f throws (reskit::Error by default), or "(no error)"
// when it throws nothing; any other exception escapes and fails the test.
#pragma once

#include <string>

#include "reskit/error.h"

namespace reskit::test {

template <class E = Error>
std::string error_of(auto&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace reskit::test
