// Facts about the machine palign runs on that change its speed: which BLAS libtorch ended up with, thread counts.
#pragma once

#include <string>

namespace palign::runtime {

// True when libtorch's BLAS calls resolve to OpenBLAS (checked by symbol lookup in the running process).
bool blas_is_openblas();
// True when the process uses Debian's reference BLAS (the slow fallback when OpenBLAS is not installed).
bool blas_is_reference();
// One line for logs: "openblas-pthread 0.3.21 (...)" or "reference BLAS (slow: apt-get install libopenblas0-pthread)".
std::string blas_description();
// Prints a warning on stderr once per process when BLAS is the slow reference implementation.
void warn_if_reference_blas();

}  // namespace palign::runtime
