// Python's str algorithms over UTF-8 for the Jinja interpreter (jinja_internal.h): code points (Python indexes
// strings by code point), str.isspace() / strip(), upper() / lower() / title() with CPython's multi-character
// mappings and final sigma, capitalize, swapcase, splitlines, replace, center / ljust / rjust, printf-style "%"
// formatting and markupsafe's HTML escaping. Shared by the filters (jinja_filters.cpp) and the str methods
// (jinja_methods.cpp).
#include <utf8proc.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "jinja_internal.h"
#include "unicode.h"

namespace palign::runtime::jinja {

std::string require_str(const Value& v, const std::string& what) {
  if (!v.is_string()) fail(what + " must be str, not " + type_name(v));
  return v.as_string();
}

int64_t require_int(const Value& v, const std::string& what) {
  if (!v.is_integral()) fail(what + ": '" + type_name(v) + "' object cannot be interpreted as an integer");
  return v.as_int();
}

// ---------------------------------------------------------------------------------------------------------------
// printf-style formatting: str % args.

std::string percent_format(const std::string& format, const Value& args, bool escape_args) {
  std::vector<Value> positional;
  const bool mapping = args.is_dict();
  if (args.is_sequence_kind(ListData::Kind::kTuple)) {
    positional = args.as_list().items;
  } else {
    positional.push_back(args);
  }
  size_t next_arg = 0;
  bool used_mapping = false;
  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out.push_back(format[i]);
      continue;
    }
    if (++i >= format.size()) fail("incomplete format");
    if (format[i] == '%') {
      out.push_back('%');
      continue;
    }
    Value arg;
    bool have_arg = false;
    if (format[i] == '(') {
      const size_t close = format.find(')', i);
      if (close == std::string::npos) fail("incomplete format key");
      if (!mapping) fail("format requires a mapping");
      const Value* v = args.as_dict().find(Value::string(format.substr(i + 1, close - i - 1)));
      if (!v) fail("KeyError: " + repr_string(format.substr(i + 1, close - i - 1)));
      arg = *v;
      have_arg = used_mapping = true;
      i = close + 1;
    }
    std::string flags;
    while (i < format.size() && std::string_view("-+ #0").find(format[i]) != std::string_view::npos) {
      flags.push_back(format[i++]);
    }
    std::string width, precision;
    if (i < format.size() && format[i] == '*') fail_unsupported("'*' widths in %-formatting");
    while (i < format.size() && std::isdigit(static_cast<unsigned char>(format[i]))) width.push_back(format[i++]);
    bool has_precision = false;
    if (i < format.size() && format[i] == '.') {
      has_precision = true;
      ++i;
      while (i < format.size() && std::isdigit(static_cast<unsigned char>(format[i]))) precision.push_back(format[i++]);
    }
    while (i < format.size() && (format[i] == 'h' || format[i] == 'l' || format[i] == 'L')) ++i;
    if (i >= format.size()) fail("incomplete format");
    const char conv = format[i];
    if (!have_arg) {
      if (next_arg >= positional.size()) fail("not enough arguments for format string");
      arg = positional[next_arg++];
    }
    const std::string spec = "%" + flags + width + (has_precision ? "." + precision : "");
    char buf[512];
    switch (conv) {
      case 's':
      case 'r':
      case 'a': {
        std::string s = conv == 's' ? to_str(arg) : to_repr(arg);
        if (escape_args && !(conv == 's' && arg.is_markup())) s = html_escape(s);
        if (has_precision) {
          const auto cps = code_points(s);
          const size_t keep = std::min(cps.size(), static_cast<size_t>(precision.empty() ? 0 : std::stoul(precision)));
          s = from_code_points(cps, 0, keep);
        }
        const size_t w = width.empty() ? 0 : std::stoul(width);
        const size_t len = code_points(s).size();
        if (len < w) {
          const std::string pad(w - len, ' ');
          s = flags.find('-') != std::string::npos ? s + pad : pad + s;
        }
        out += s;
        break;
      }
      case 'd':
      case 'i':
      case 'u':
      case 'x':
      case 'X':
      case 'o': {
        if (!arg.is_number()) {
          fail(std::string("%") + conv +
               " format: " + (conv == 'd' || conv == 'i' || conv == 'u' ? "a real number" : "an integer") +
               " is required, not " + type_name(arg));
        }
        if (arg.is_float() && conv != 'd' && conv != 'i' && conv != 'u') {
          fail(std::string("%") + conv + " format: an integer is required, not float");
        }
        const int64_t n = arg.is_float() ? static_cast<int64_t>(std::trunc(arg.as_double())) : arg.as_int();
        const char c = conv == 'i' || conv == 'u' ? 'd' : conv;
        std::snprintf(buf, sizeof(buf), (spec + "ll" + c).c_str(), static_cast<long long>(n));
        out += buf;
        break;
      }
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G': {
        if (!arg.is_number()) fail(std::string("must be real number, not ") + type_name(arg));
        std::snprintf(buf, sizeof(buf), (spec + conv).c_str(), arg.as_double());
        out += buf;
        break;
      }
      case 'c': {
        std::string c;
        if (arg.is_integral()) {
          unicode::append_utf8(c, static_cast<char32_t>(arg.as_int()));
        } else if (arg.is_string() && code_points(arg.as_string()).size() == 1) {
          c = arg.as_string();
        } else {
          fail("%c requires an int or a unicode character");
        }
        out += c;
        break;
      }
      default:
        fail_unsupported(std::string("the %-format conversion '%") + conv + "'");
    }
  }
  if (!mapping && next_arg < positional.size()) fail("not all arguments converted during string formatting");
  (void)used_mapping;
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Code points and case.

std::vector<char32_t> code_points(std::string_view s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) out.push_back(unicode::next_code_point(s, pos));
  return out;
}

std::string from_code_points(const std::vector<char32_t>& cps, size_t begin, size_t end) {
  std::string out;
  for (size_t i = begin; i < end && i < cps.size(); ++i) unicode::append_utf8(out, cps[i]);
  return out;
}

bool is_python_space(char32_t cp) { return unicode::is_whitespace(cp) || (cp >= 0x1C && cp <= 0x1F); }

std::string python_strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right) {
  std::vector<char32_t> strip_set;
  if (chars) strip_set = code_points(*chars);
  auto strippable = [&](char32_t cp) {
    return chars ? std::find(strip_set.begin(), strip_set.end(), cp) != strip_set.end() : is_python_space(cp);
  };
  size_t begin = 0;
  if (left) {
    while (begin < s.size()) {
      size_t pos = begin;
      if (!strippable(unicode::next_code_point(s, pos))) break;
      begin = pos;
    }
  }
  size_t end = s.size();
  if (right) {
    while (end > begin) {
      size_t start = end - 1;
      while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
      size_t pos = start;
      if (!strippable(unicode::next_code_point(s, pos))) break;
      end = start;
    }
  }
  return std::string(s.substr(begin, end - begin));
}

namespace {

// Python's multi-character case mappings (SpecialCasing.txt, unconditional), generated from CPython 3.11:
// [c for c in range(0x110000) if len(chr(c).upper()) > 1], and likewise for lower() and title().
struct SpecialCase {
  char32_t cp;
  const char* text;
};
// clang-format off
constexpr SpecialCase kSpecialUpper[] = {
    {0x00DF, "\x53\x53"}, {0x0149, "\xca\xbc\x4e"}, {0x01F0, "\x4a\xcc\x8c"}, {0x0390, "\xce\x99\xcc\x88\xcc\x81"},
    {0x03B0, "\xce\xa5\xcc\x88\xcc\x81"}, {0x0587, "\xd4\xb5\xd5\x92"}, {0x1E96, "\x48\xcc\xb1"},
    {0x1E97, "\x54\xcc\x88"}, {0x1E98, "\x57\xcc\x8a"}, {0x1E99, "\x59\xcc\x8a"}, {0x1E9A, "\x41\xca\xbe"},
    {0x1F50, "\xce\xa5\xcc\x93"}, {0x1F52, "\xce\xa5\xcc\x93\xcc\x80"}, {0x1F54, "\xce\xa5\xcc\x93\xcc\x81"},
    {0x1F56, "\xce\xa5\xcc\x93\xcd\x82"}, {0x1F80, "\xe1\xbc\x88\xce\x99"}, {0x1F81, "\xe1\xbc\x89\xce\x99"},
    {0x1F82, "\xe1\xbc\x8a\xce\x99"}, {0x1F83, "\xe1\xbc\x8b\xce\x99"}, {0x1F84, "\xe1\xbc\x8c\xce\x99"},
    {0x1F85, "\xe1\xbc\x8d\xce\x99"}, {0x1F86, "\xe1\xbc\x8e\xce\x99"}, {0x1F87, "\xe1\xbc\x8f\xce\x99"},
    {0x1F88, "\xe1\xbc\x88\xce\x99"}, {0x1F89, "\xe1\xbc\x89\xce\x99"}, {0x1F8A, "\xe1\xbc\x8a\xce\x99"},
    {0x1F8B, "\xe1\xbc\x8b\xce\x99"}, {0x1F8C, "\xe1\xbc\x8c\xce\x99"}, {0x1F8D, "\xe1\xbc\x8d\xce\x99"},
    {0x1F8E, "\xe1\xbc\x8e\xce\x99"}, {0x1F8F, "\xe1\xbc\x8f\xce\x99"}, {0x1F90, "\xe1\xbc\xa8\xce\x99"},
    {0x1F91, "\xe1\xbc\xa9\xce\x99"}, {0x1F92, "\xe1\xbc\xaa\xce\x99"}, {0x1F93, "\xe1\xbc\xab\xce\x99"},
    {0x1F94, "\xe1\xbc\xac\xce\x99"}, {0x1F95, "\xe1\xbc\xad\xce\x99"}, {0x1F96, "\xe1\xbc\xae\xce\x99"},
    {0x1F97, "\xe1\xbc\xaf\xce\x99"}, {0x1F98, "\xe1\xbc\xa8\xce\x99"}, {0x1F99, "\xe1\xbc\xa9\xce\x99"},
    {0x1F9A, "\xe1\xbc\xaa\xce\x99"}, {0x1F9B, "\xe1\xbc\xab\xce\x99"}, {0x1F9C, "\xe1\xbc\xac\xce\x99"},
    {0x1F9D, "\xe1\xbc\xad\xce\x99"}, {0x1F9E, "\xe1\xbc\xae\xce\x99"}, {0x1F9F, "\xe1\xbc\xaf\xce\x99"},
    {0x1FA0, "\xe1\xbd\xa8\xce\x99"}, {0x1FA1, "\xe1\xbd\xa9\xce\x99"}, {0x1FA2, "\xe1\xbd\xaa\xce\x99"},
    {0x1FA3, "\xe1\xbd\xab\xce\x99"}, {0x1FA4, "\xe1\xbd\xac\xce\x99"}, {0x1FA5, "\xe1\xbd\xad\xce\x99"},
    {0x1FA6, "\xe1\xbd\xae\xce\x99"}, {0x1FA7, "\xe1\xbd\xaf\xce\x99"}, {0x1FA8, "\xe1\xbd\xa8\xce\x99"},
    {0x1FA9, "\xe1\xbd\xa9\xce\x99"}, {0x1FAA, "\xe1\xbd\xaa\xce\x99"}, {0x1FAB, "\xe1\xbd\xab\xce\x99"},
    {0x1FAC, "\xe1\xbd\xac\xce\x99"}, {0x1FAD, "\xe1\xbd\xad\xce\x99"}, {0x1FAE, "\xe1\xbd\xae\xce\x99"},
    {0x1FAF, "\xe1\xbd\xaf\xce\x99"}, {0x1FB2, "\xe1\xbe\xba\xce\x99"}, {0x1FB3, "\xce\x91\xce\x99"},
    {0x1FB4, "\xce\x86\xce\x99"}, {0x1FB6, "\xce\x91\xcd\x82"}, {0x1FB7, "\xce\x91\xcd\x82\xce\x99"},
    {0x1FBC, "\xce\x91\xce\x99"}, {0x1FC2, "\xe1\xbf\x8a\xce\x99"}, {0x1FC3, "\xce\x97\xce\x99"},
    {0x1FC4, "\xce\x89\xce\x99"}, {0x1FC6, "\xce\x97\xcd\x82"}, {0x1FC7, "\xce\x97\xcd\x82\xce\x99"},
    {0x1FCC, "\xce\x97\xce\x99"}, {0x1FD2, "\xce\x99\xcc\x88\xcc\x80"}, {0x1FD3, "\xce\x99\xcc\x88\xcc\x81"},
    {0x1FD6, "\xce\x99\xcd\x82"}, {0x1FD7, "\xce\x99\xcc\x88\xcd\x82"}, {0x1FE2, "\xce\xa5\xcc\x88\xcc\x80"},
    {0x1FE3, "\xce\xa5\xcc\x88\xcc\x81"}, {0x1FE4, "\xce\xa1\xcc\x93"}, {0x1FE6, "\xce\xa5\xcd\x82"},
    {0x1FE7, "\xce\xa5\xcc\x88\xcd\x82"}, {0x1FF2, "\xe1\xbf\xba\xce\x99"}, {0x1FF3, "\xce\xa9\xce\x99"},
    {0x1FF4, "\xce\x8f\xce\x99"}, {0x1FF6, "\xce\xa9\xcd\x82"}, {0x1FF7, "\xce\xa9\xcd\x82\xce\x99"},
    {0x1FFC, "\xce\xa9\xce\x99"}, {0xFB00, "\x46\x46"}, {0xFB01, "\x46\x49"}, {0xFB02, "\x46\x4c"},
    {0xFB03, "\x46\x46\x49"}, {0xFB04, "\x46\x46\x4c"}, {0xFB05, "\x53\x54"}, {0xFB06, "\x53\x54"},
    {0xFB13, "\xd5\x84\xd5\x86"}, {0xFB14, "\xd5\x84\xd4\xb5"}, {0xFB15, "\xd5\x84\xd4\xbb"},
    {0xFB16, "\xd5\x8e\xd5\x86"}, {0xFB17, "\xd5\x84\xd4\xbd"},
};
constexpr SpecialCase kSpecialLower[] = {
    {0x0130, "\x69\xcc\x87"},
};
constexpr SpecialCase kSpecialTitle[] = {
    {0x00DF, "\x53\x73"}, {0x0149, "\xca\xbc\x4e"}, {0x01F0, "\x4a\xcc\x8c"}, {0x0390, "\xce\x99\xcc\x88\xcc\x81"},
    {0x03B0, "\xce\xa5\xcc\x88\xcc\x81"}, {0x0587, "\xd4\xb5\xd6\x82"}, {0x1E96, "\x48\xcc\xb1"},
    {0x1E97, "\x54\xcc\x88"}, {0x1E98, "\x57\xcc\x8a"}, {0x1E99, "\x59\xcc\x8a"}, {0x1E9A, "\x41\xca\xbe"},
    {0x1F50, "\xce\xa5\xcc\x93"}, {0x1F52, "\xce\xa5\xcc\x93\xcc\x80"}, {0x1F54, "\xce\xa5\xcc\x93\xcc\x81"},
    {0x1F56, "\xce\xa5\xcc\x93\xcd\x82"}, {0x1FB2, "\xe1\xbe\xba\xcd\x85"}, {0x1FB4, "\xce\x86\xcd\x85"},
    {0x1FB6, "\xce\x91\xcd\x82"}, {0x1FB7, "\xce\x91\xcd\x82\xcd\x85"}, {0x1FC2, "\xe1\xbf\x8a\xcd\x85"},
    {0x1FC4, "\xce\x89\xcd\x85"}, {0x1FC6, "\xce\x97\xcd\x82"}, {0x1FC7, "\xce\x97\xcd\x82\xcd\x85"},
    {0x1FD2, "\xce\x99\xcc\x88\xcc\x80"}, {0x1FD3, "\xce\x99\xcc\x88\xcc\x81"}, {0x1FD6, "\xce\x99\xcd\x82"},
    {0x1FD7, "\xce\x99\xcc\x88\xcd\x82"}, {0x1FE2, "\xce\xa5\xcc\x88\xcc\x80"}, {0x1FE3, "\xce\xa5\xcc\x88\xcc\x81"},
    {0x1FE4, "\xce\xa1\xcc\x93"}, {0x1FE6, "\xce\xa5\xcd\x82"}, {0x1FE7, "\xce\xa5\xcc\x88\xcd\x82"},
    {0x1FF2, "\xe1\xbf\xba\xcd\x85"}, {0x1FF4, "\xce\x8f\xcd\x85"}, {0x1FF6, "\xce\xa9\xcd\x82"},
    {0x1FF7, "\xce\xa9\xcd\x82\xcd\x85"}, {0xFB00, "\x46\x66"}, {0xFB01, "\x46\x69"}, {0xFB02, "\x46\x6c"},
    {0xFB03, "\x46\x66\x69"}, {0xFB04, "\x46\x66\x6c"}, {0xFB05, "\x53\x74"}, {0xFB06, "\x53\x74"},
    {0xFB13, "\xd5\x84\xd5\xb6"}, {0xFB14, "\xd5\x84\xd5\xa5"}, {0xFB15, "\xd5\x84\xd5\xab"},
    {0xFB16, "\xd5\x8e\xd5\xb6"}, {0xFB17, "\xd5\x84\xd5\xad"},
};
// clang-format on

template <size_t N>
const char* special_case(const SpecialCase (&table)[N], char32_t cp) {
  const auto it = std::lower_bound(std::begin(table), std::end(table), cp,
                                   [](const SpecialCase& e, char32_t c) { return e.cp < c; });
  return it != std::end(table) && it->cp == cp ? it->text : nullptr;
}

bool is_cased_cp(char32_t cp) {
  const auto c = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT;
}

// Unicode's Case_Ignorable, approximated by categories Mn Me Cf Lm Sk and the word-internal apostrophes and dots.
bool is_case_ignorable(char32_t cp) {
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_SK:
      return true;
    default:
      return cp == '\'' || cp == '.' || cp == ':' || cp == 0xB7 || cp == 0x2019;
  }
}

}  // namespace

std::string python_title_char(char32_t cp) {
  if (const char* special = special_case(kSpecialTitle, cp)) return special;
  if (cp < 0x80) return std::string(1, static_cast<char>(cp >= 'a' && cp <= 'z' ? cp - 32 : cp));
  return unicode::to_utf8(static_cast<char32_t>(utf8proc_totitle(static_cast<utf8proc_int32_t>(cp))));
}

std::string python_upper(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) {
    const char32_t cp = unicode::next_code_point(s, pos);
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp >= 'a' && cp <= 'z' ? cp - 32 : cp));
    } else if (const char* special = special_case(kSpecialUpper, cp)) {
      out += special;
    } else {
      unicode::append_utf8(out, static_cast<char32_t>(utf8proc_toupper(static_cast<utf8proc_int32_t>(cp))));
    }
  }
  return out;
}

std::string python_lower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  const std::vector<char32_t> cps = code_points(s);
  for (size_t i = 0; i < cps.size(); ++i) {
    const char32_t cp = cps[i];
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp));
    } else if (const char* special = special_case(kSpecialLower, cp)) {
      out += special;
    } else if (cp == 0x3A3) {
      // CPython's Final_Sigma: a capital sigma after a cased letter and not before one lowers to final sigma.
      size_t j = i;
      while (j > 0 && is_case_ignorable(cps[j - 1])) --j;
      const bool after_cased = j > 0 && is_cased_cp(cps[j - 1]);
      size_t k = i + 1;
      while (k < cps.size() && is_case_ignorable(cps[k])) ++k;
      const bool before_cased = k < cps.size() && is_cased_cp(cps[k]);
      unicode::append_utf8(out, after_cased && !before_cased ? char32_t{0x3C2} : char32_t{0x3C3});
    } else {
      unicode::append_utf8(out, static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Character classes and str algorithms.

// ---------------------------------------------------------------------------------------------------------------
// Character classes and case (str methods and filters).

bool is_cased_upper(char32_t cp) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(cp)) == UTF8PROC_CATEGORY_LU;
}

bool is_cased_lower(char32_t cp) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(cp)) == UTF8PROC_CATEGORY_LL;
}

bool is_cased(char32_t cp) {
  const auto c = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT;
}

namespace {

std::string upper_cp(char32_t cp) { return python_upper(unicode::to_utf8(cp)); }

std::string lower_cp(char32_t cp) { return python_lower(unicode::to_utf8(cp)); }

std::string title_cp(char32_t cp) { return python_title_char(cp); }

bool is_line_break(char32_t cp) {
  return cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || cp == 0x1C || cp == 0x1D || cp == 0x1E || cp == 0x85 ||
         cp == 0x2028 || cp == 0x2029;
}

}  // namespace

std::string python_capitalize(const std::string& s) {
  const auto cps = code_points(s);
  if (cps.empty()) return s;
  std::string out = title_cp(cps[0]);
  for (size_t i = 1; i < cps.size(); ++i) out += lower_cp(cps[i]);
  return out;
}

// Python's str.title(): a cased character after an uncased one starts a word.
std::string python_title(const std::string& s) {
  std::string out;
  bool previous_cased = false;
  for (char32_t cp : code_points(s)) {
    out += previous_cased ? lower_cp(cp) : title_cp(cp);
    previous_cased = is_cased(cp);
  }
  return out;
}

std::string python_swapcase(const std::string& s) {
  std::string out;
  for (char32_t cp : code_points(s)) {
    out += is_cased_upper(cp) ? lower_cp(cp) : is_cased_lower(cp) ? upper_cp(cp) : unicode::to_utf8(cp);
  }
  return out;
}

std::vector<std::string> python_splitlines(const std::string& s, bool keepends) {
  std::vector<std::string> out;
  const auto cps = code_points(s);
  size_t start = 0;
  for (size_t i = 0; i < cps.size(); ++i) {
    if (!is_line_break(cps[i])) continue;
    size_t eol = i + 1;
    if (cps[i] == '\r' && i + 1 < cps.size() && cps[i + 1] == '\n') eol = i + 2;
    out.push_back(from_code_points(cps, start, keepends ? eol : i));
    start = eol;
    i = eol - 1;
  }
  if (start < cps.size()) out.push_back(from_code_points(cps, start, cps.size()));
  return out;
}

std::string python_replace(const std::string& s, const std::string& old, const std::string& repl, int64_t count) {
  std::string out;
  if (old.empty()) {
    const auto cps = code_points(s);
    int64_t done = 0;
    for (size_t i = 0; i <= cps.size(); ++i) {
      if (count < 0 || done < count) {
        out += repl;
        ++done;
      }
      if (i < cps.size()) unicode::append_utf8(out, cps[i]);
    }
    return out;
  }
  size_t start = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    const size_t at = s.find(old, start);
    if (at == std::string::npos) break;
    out.append(s, start, at - start);
    out += repl;
    start = at + old.size();
    ++done;
  }
  out.append(s, start, std::string::npos);
  return out;
}

std::string python_pad(const std::string& s, int64_t width, const std::string& fill,
                       int align) {  // -1 left, 0 center, 1 right
  const auto fill_cps = code_points(fill);
  if (fill_cps.size() != 1) fail("The fill character must be exactly one character long");
  const int64_t len = static_cast<int64_t>(code_points(s).size());
  if (width <= len) return s;
  const int64_t marg = width - len;
  int64_t left = align < 0 ? 0 : align > 0 ? marg : marg / 2 + (marg & width & 1);
  std::string out;
  for (int64_t i = 0; i < left; ++i) out += fill;
  out += s;
  for (int64_t i = 0; i < marg - left; ++i) out += fill;
  return out;
}

}  // namespace palign::runtime::jinja
