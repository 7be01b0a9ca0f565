// What a rendering leaves allocated: nothing. A macro holds the scope it was defined in while that scope holds the
// macro, a cycle of shared pointers that leaked the scope with every rendering of a template with a macro or a call
// block (found by fuzz/chat_messages_fuzz under LeakSanitizer). The test counts this thread's allocations, through a
// replaced global operator new, while a template renders many times.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <new>
#include <nlohmann/json.hpp>
#include <string>

#include "jinja.h"
#include "palign/base/error.h"

namespace {

thread_local bool counting = false;
thread_local int64_t live = 0;  // allocations minus deallocations on this thread while counting

}  // namespace

void* operator new(std::size_t size) {
  if (counting) ++live;
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return ::operator new(size); }
void operator delete(void* p) noexcept {
  if (p && counting) --live;
  std::free(p);
}
void operator delete[](void* p) noexcept { ::operator delete(p); }
void operator delete(void* p, std::size_t) noexcept { ::operator delete(p); }
void operator delete[](void* p, std::size_t) noexcept { ::operator delete(p); }
// The nothrow forms too (std::stable_sort's temporary buffer uses them): left to the runtime, their blocks would be
// freed by the delete above, a new/free mismatch that AddressSanitizer reports.
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  if (counting) ++live;
  return std::malloc(size ? size : 1);
}
void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept { return ::operator new(size, tag); }
void operator delete(void* p, const std::nothrow_t&) noexcept { ::operator delete(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { ::operator delete(p); }

namespace {

using palign::runtime::jinja::Template;

// Net allocations left behind by rendering tmpl `times` times (after one warm-up rendering).
int64_t left_allocated(const Template& tmpl, int times) {
  const nlohmann::ordered_json context = {{"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  (void)tmpl.render(context, {});
  live = 0;
  counting = true;
  for (int i = 0; i < times; ++i) (void)tmpl.render(context, {});
  counting = false;
  return live;
}

TEST(JinjaScope, RenderingATemplateWithAMacroLeavesNothingAllocated) {
  const auto tmpl = Template::parse(
      "{%- macro show(m) -%}[{{ m.role }}: {{ m.content }}]{%- endmacro -%}"
      "{%- for message in messages %}{{ show(message) }}{% endfor -%}");
  EXPECT_EQ(tmpl.render({{"messages", {{{"role", "user"}, {"content", "hi"}}}}}, {}), "[user: hi]");
  EXPECT_EQ(left_allocated(tmpl, 100), 0);
}

TEST(JinjaScope, RenderingACallBlockLeavesNothingAllocated) {
  const auto tmpl = Template::parse(
      "{%- macro wrap() -%}<{{ caller() }}>{%- endmacro -%}"
      "{%- call wrap() %}{{ messages[0].content }}{% endcall -%}");
  EXPECT_EQ(left_allocated(tmpl, 100), 0);
}

TEST(JinjaScope, AFailedRenderingLeavesNothingAllocated) {
  const auto tmpl = Template::parse(
      "{%- macro show(m) -%}{{ m.content }}{%- endmacro -%}{{ show(messages[0]) }}{{ raise_exception('no') }}");
  const nlohmann::ordered_json context = {{"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  const auto render = [&] {
    try {
      (void)tmpl.render(context, {});
    } catch (const palign::Error&) {
    }
  };
  render();  // warm-up
  live = 0;
  counting = true;
  for (int i = 0; i < 20; ++i) render();
  counting = false;
  EXPECT_EQ(live, 0);
}

}  // namespace
