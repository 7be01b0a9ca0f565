// What the fuzz targets share: the repository's fixtures, a per-process scratch directory for parsers that read
// files, and the one exception a parser may throw for bad input (palign::Error; anything else escapes and is a
// finding). Not a library: each target includes it.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace palign::fuzz {

// The repository root (fixtures: tests/data, models/default).
inline std::filesystem::path source_dir() { return PALIGN_SOURCE_DIR; }

// A directory of this process's own under $TMPDIR (default /tmp), removed at exit.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::filesystem::path d = std::filesystem::path(tmp && *tmp ? tmp : "/tmp") /
                              ("palign-fuzz-" + std::to_string(static_cast<long>(::getpid())));
    std::filesystem::create_directories(d);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(scratch_dir(), ec);
    });
    return d;
  }();
  return dir;
}

// Writes bytes to path (replacing it), as a client's file would arrive on disk.
inline void write_file(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace palign::fuzz
