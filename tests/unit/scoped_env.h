// Scratch state for the unit tests that change the environment: a variable
// set for one scope, and a temporary directory removed with its files.
#pragma once
#include <stdlib.h>

#include <cstdlib>
#include <string>

namespace unit_test {

struct ScopedEnv {
  std::string key;
  ScopedEnv(const std::string& k, const std::string& v) : key(k) { setenv(k.c_str(), v.c_str(), 1); }
  ~ScopedEnv() { unsetenv(key.c_str()); }
};

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/dfd-unit-XXXXXX";
    path = mkdtemp(t);
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

}  // namespace unit_test
