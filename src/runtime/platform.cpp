// BLAS detection. Debian's libtorch calls the system libblas.so.3, which is the slow reference implementation
// unless OpenBLAS is installed; PyTorch's own builds bring MKL or OpenBLAS inside libtorch.
#include "palign/runtime/platform.h"

#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <mutex>

namespace palign::runtime {

namespace {
using ConfigFn = const char* (*)();
ConfigFn openblas_config() { return reinterpret_cast<ConfigFn>(dlsym(RTLD_DEFAULT, "openblas_get_config")); }
// Looked up at run time so that the build does not depend on OpenBLAS.
using SetThreadsFn = void (*)(int);
SetThreadsFn openblas_set_threads() {
  return reinterpret_cast<SetThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
}

// True when the process has mapped Debian's reference BLAS (…/blas/libblas.so.3).
bool reference_blas_mapped() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line))
    if (line.find("/blas/libblas.so") != std::string::npos) return true;
  return false;
}

std::string build_blas() {
  const std::string config = at::show_config();
  const size_t pos = config.find("BLAS_INFO=");
  if (pos == std::string::npos) return "";
  return config.substr(pos + 10, config.find_first_of(", \n", pos) - pos - 10);
}
}  // namespace

bool blas_is_openblas() { return openblas_config() != nullptr; }

bool blas_is_reference() { return !blas_is_openblas() && reference_blas_mapped(); }

std::string blas_description() {
  if (auto fn = openblas_config()) return std::string("OpenBLAS (") + fn() + ")";
  if (reference_blas_mapped())
    return "reference BLAS (about 15x slower at matmul; apt-get install libopenblas0-pthread)";
  const std::string built = build_blas();
  return built.empty() ? "libtorch's built-in BLAS" : "libtorch's built-in BLAS (" + built + ")";
}

void warn_if_reference_blas() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (blas_is_reference()) std::fprintf(stderr, "palign: warning: libtorch is using %s\n", blas_description().c_str());
  });
}

int match_blas_threads() {
  const SetThreadsFn set_threads = openblas_set_threads();
  if (!set_threads) return 0;
  const int n = std::max(1, at::get_num_threads());
  set_threads(n);
  return n;
}

}  // namespace palign::runtime
