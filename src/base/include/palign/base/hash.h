// Stable content hashes (the same on every platform and run, unlike std::hash): FNV-1a 64.
#pragma once

#include <cstdint>
#include <string_view>

namespace palign {

constexpr uint64_t kFnv1a64Offset = 1469598103934665603ull;

// FNV-1a 64 of bytes, continuing from h (chain calls to hash several pieces).
constexpr uint64_t fnv1a64(std::string_view bytes, uint64_t h = kFnv1a64Offset) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace palign
