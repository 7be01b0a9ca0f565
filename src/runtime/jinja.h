// A Jinja interpreter for the subset of Jinja2 that Hugging Face chat templates use. It renders byte for byte what
// jinja2 renders when configured as transformers' apply_chat_template configures it: ImmutableSandboxedEnvironment
// with trim_blocks and lstrip_blocks, jinja2.ext.loopcontrols, the {% generation %} block, and tojson as Python's
// json.dumps(ensure_ascii=False). Private to runtime; the public face is chat_template.h.
// Not a general Jinja engine: no autoescape, include/extends/import, recursive loops or groupby. Anything outside the
// subset is a palign::Error(kUnsupported) whose message names the construct and its template line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace palign::runtime::jinja {

struct Program;  // the parsed template (jinja_internal.h)

struct RenderOptions {
  // What strftime_now(format) returns; empty: the template sees strftime_now as undefined.
  std::function<std::string(const std::string& format)> strftime_now;
  // Runaway guards: bytes rendered in all (macro and {% set %} captures included), nested macro calls, and steps
  // (statements run, loop iterations, calls). Exceeding one is a kInvalidArgument error.
  size_t max_output_bytes = size_t{1} << 24;
  int max_call_depth = 200;
  int64_t max_steps = 50'000'000;
};

// A parsed template. Immutable after parse; render() may be called concurrently.
class Template {
 public:
  // Parses Jinja source. Throws palign::Error: kInvalidArgument for a syntax error or invalid UTF-8, kUnsupported
  // for a construct outside the subset (an unknown filter, test or tag); both name the line.
  static Template parse(std::string_view source);

  // Renders with the members of context (a JSON object, key order kept as Python dicts keep it) as the template's
  // variables. Throws palign::Error naming the line: kInvalidArgument for what jinja2 raises at render time
  // (raise_exception() — the message ends with the template's text —, undefined values used, type errors, the
  // runaway guards), kUnsupported for what palign does not implement.
  std::string render(const nlohmann::ordered_json& context, const RenderOptions& options = {}) const;

  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;
  ~Template();

 private:
  explicit Template(std::shared_ptr<const Program> program);
  std::shared_ptr<const Program> program_;
};

}  // namespace palign::runtime::jinja
