#pragma once
// The message of the exception `f` throws; a test failure (and "") when it throws none.
#include <gtest/gtest.h>

#include <exception>
#include <functional>
#include <string>

namespace ladder::test {

inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an error";
  return "";
}

}  // namespace ladder::test
