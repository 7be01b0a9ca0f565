// ErrorCode names and their one mapping to CLI exit codes and HTTP statuses.
#include "palign/base/error.h"

#include <cstdio>
#include <cstdlib>

namespace palign {

std::string_view error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return "invalid_argument";
    case ErrorCode::kNotFound: return "not_found";
    case ErrorCode::kUnsupported: return "unsupported";
    case ErrorCode::kIo: return "io";
    case ErrorCode::kConflict: return "conflict";
    case ErrorCode::kInternal: return "internal";
    case ErrorCode::kSentinel: break;
  }
  return "unknown";
}

int exit_code(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return 2;
    case ErrorCode::kNotFound: return 3;
    case ErrorCode::kUnsupported: return 4;
    case ErrorCode::kIo: return 5;
    case ErrorCode::kConflict: return 6;
    case ErrorCode::kInternal:
    case ErrorCode::kSentinel: break;
  }
  return 70;
}

int http_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return 400;
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kUnsupported: return 501;
    case ErrorCode::kConflict: return 409;
    case ErrorCode::kIo:
    case ErrorCode::kInternal:
    case ErrorCode::kSentinel: break;
  }
  return 500;
}

namespace detail {
void assert_fail(const char* cond, const char* file, int line, const std::string& msg) {
  std::fprintf(stderr, "palign: internal assertion failed: %s at %s:%d %s\n", cond, file, line, msg.c_str());
  std::abort();
}
}  // namespace detail

}  // namespace palign
