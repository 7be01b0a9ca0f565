// BLAS detection: libtorch from Debian calls the system libblas.so.3, which is OpenBLAS only if it is installed.
#include "palign/runtime/platform.h"

#include <dlfcn.h>

#include <cstdio>
#include <mutex>

namespace palign::runtime {

namespace {
using ConfigFn = const char* (*)();
ConfigFn openblas_config() { return reinterpret_cast<ConfigFn>(dlsym(RTLD_DEFAULT, "openblas_get_config")); }
}  // namespace

bool blas_is_openblas() { return openblas_config() != nullptr; }

std::string blas_description() {
  if (auto fn = openblas_config()) return std::string("OpenBLAS (") + fn() + ")";
  return "reference BLAS (about 15x slower at matmul; apt-get install libopenblas0-pthread)";
}

void warn_if_reference_blas() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (!blas_is_openblas()) {
      std::fprintf(stderr, "palign: warning: libtorch is using %s\n", blas_description().c_str());
    }
  });
}

}  // namespace palign::runtime
