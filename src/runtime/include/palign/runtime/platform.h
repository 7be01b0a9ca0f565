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
// Caps OpenBLAS's own thread pool at libtorch's thread count (at::get_num_threads()), which OpenBLAS pthread builds
// ignore: with 1 torch thread, products above about 262K MACs still ran on 2 OpenBLAS threads, 2-3x slower on a busy
// 2-core machine. Returns the count set, or 0 when BLAS is not OpenBLAS. Model::load calls it; call it again after
// at::set_num_threads.
int match_blas_threads();

}  // namespace palign::runtime
