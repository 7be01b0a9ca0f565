// palign's one error type and its check macros (STYLE.md R6).
// Errors a user can cause throw palign::Error with an ErrorCode; the CLI and the server translate the code into an
// exit status / HTTP status in exactly one place each (exit_code(), http_status()). Bugs use PALIGN_ASSERT.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace palign {

enum class ErrorCode {
  kInvalidArgument,  // bad flag, bad request field, malformed file content
  kNotFound,         // a file, model, user or key that does not exist
  kUnsupported,      // valid input that palign does not handle (an architecture, a chat template)
  kIo,               // reading or writing failed
  kConflict,         // a version or state conflict
  kInternal,         // a bug, or an unexpected error from a library
  kSentinel,         // not a code; keep last
};

std::string_view error_code_name(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

// The CLI's exit status for an error code (2 for user mistakes, 3 for missing things, ...).
int exit_code(ErrorCode code);
// The HTTP status for an error code (400, 404, 501, 500, 409, 500).
int http_status(ErrorCode code);

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}
[[noreturn]] void assert_fail(const char* cond, const char* file, int line, const std::string& msg);
}  // namespace detail

}  // namespace palign

// Throws palign::Error(code, message) unless cond holds. The message should start with "[module.function]" and say
// what was expected, what was found, and what to do.
#define PALIGN_CHECK(cond, code, ...)                                                  \
  do {                                                                                 \
    if (!(cond)) throw ::palign::Error((code), ::palign::detail::concat(__VA_ARGS__)); \
  } while (0)

#define PALIGN_THROW(code, ...) throw ::palign::Error((code), ::palign::detail::concat(__VA_ARGS__))

// Always-on invariant check for bugs; never for user input.
#define PALIGN_ASSERT(cond, ...)                                                                           \
  do {                                                                                                     \
    if (!(cond)) ::palign::detail::assert_fail(#cond, __FILE__, __LINE__, ::palign::detail::concat(__VA_ARGS__)); \
  } while (0)

#ifdef NDEBUG
#define PALIGN_DASSERT(cond, ...) ((void)0)
#else
#define PALIGN_DASSERT(cond, ...) PALIGN_ASSERT(cond, __VA_ARGS__)
#endif
