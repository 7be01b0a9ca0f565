// Python's str, list and dict methods for the Jinja interpreter (jinja_internal.h), as jinja2's
// ImmutableSandboxedEnvironment allows them: methods that would mutate a list or dict are "unsafe" (using one is
// the SecurityError transformers raises), markupsafe.Markup's methods keep Markup and escape what it escapes; and
// the globals range (at most 100000 items, as the sandbox), dict, namespace, joiner, cycler, raise_exception and
// strftime_now. A Python method palign lacks fails with kUnsupported, naming it.
#include <utf8proc.h>

#include <algorithm>
#include <map>
#include <set>

#include "jinja_internal.h"
#include "unicode.h"

namespace palign::runtime::jinja {

namespace {

constexpr int64_t kMaxRange = 100000;  // jinja2.sandbox.MAX_RANGE

bool is_alpha(char32_t cp) {
  const auto c = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO;
}

bool is_decimal(char32_t cp) { return utf8proc_category(static_cast<utf8proc_int32_t>(cp)) == UTF8PROC_CATEGORY_ND; }

bool is_numeric_cp(char32_t cp) { return unicode::is_numeric(cp); }

std::vector<Value> py_split(const std::string& s, const Value& sep, int64_t maxsplit, bool from_right) {
  std::vector<std::string> parts;
  if (sep.is_none() || sep.is_undefined()) {
    const auto cps = code_points(s);
    if (!from_right) {
      size_t i = 0;
      while (true) {
        while (i < cps.size() && is_python_space(cps[i])) ++i;
        if (i >= cps.size()) break;
        if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
          parts.push_back(from_code_points(cps, i, cps.size()));
          break;
        }
        size_t j = i;
        while (j < cps.size() && !is_python_space(cps[j])) ++j;
        parts.push_back(from_code_points(cps, i, j));
        i = j;
      }
    } else {
      int64_t i = static_cast<int64_t>(cps.size()) - 1;
      while (true) {
        while (i >= 0 && is_python_space(cps[static_cast<size_t>(i)])) --i;
        if (i < 0) break;
        if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
          parts.push_back(from_code_points(cps, 0, static_cast<size_t>(i) + 1));
          break;
        }
        int64_t j = i;
        while (j >= 0 && !is_python_space(cps[static_cast<size_t>(j)])) --j;
        parts.push_back(from_code_points(cps, static_cast<size_t>(j + 1), static_cast<size_t>(i) + 1));
        i = j;
      }
      std::reverse(parts.begin(), parts.end());
    }
  } else {
    const std::string d = require_str(sep, "the separator");
    if (d.empty()) fail("empty separator");
    if (!from_right) {
      size_t start = 0;
      while (true) {
        const size_t at = s.find(d, start);
        if (at == std::string::npos || (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit)) {
          parts.push_back(s.substr(start));
          break;
        }
        parts.push_back(s.substr(start, at - start));
        start = at + d.size();
      }
    } else {
      size_t end = s.size();
      while (true) {
        const size_t at = end >= d.size() ? s.rfind(d, end - d.size()) : std::string::npos;
        if (at == std::string::npos || (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit)) {
          parts.push_back(s.substr(0, end));
          break;
        }
        parts.push_back(s.substr(at + d.size(), end - at - d.size()));
        end = at;
      }
      std::reverse(parts.begin(), parts.end());
    }
  }
  std::vector<Value> out;
  for (auto& p : parts) out.push_back(Value::string(std::move(p)));
  return out;
}

// Code point index of sub in s[start:end] (Python's str.find), or -1.
int64_t py_find(const std::string& s, const std::string& sub, const Value& start, const Value& end, bool reverse) {
  const auto cps = code_points(s);
  const auto sub_cps = code_points(sub);
  const int64_t n = static_cast<int64_t>(cps.size());
  auto clamp = [n](const Value& v, int64_t dflt) {
    if (v.is_none() || v.is_undefined()) return dflt;
    int64_t i = require_int(v, "slice index");
    if (i < 0) i = std::max<int64_t>(0, i + n);
    return std::min(i, n);
  };
  const int64_t a = clamp(start, 0), b = clamp(end, n);
  const int64_t m = static_cast<int64_t>(sub_cps.size());
  if (b - a < m) return -1;
  for (int64_t k = 0; k <= b - a - m; ++k) {
    const int64_t i = reverse ? b - m - k : a + k;
    if (std::equal(sub_cps.begin(), sub_cps.end(), cps.begin() + i)) return i;
  }
  return -1;
}

int64_t py_count(const std::string& s, const std::string& sub) {
  if (sub.empty()) return static_cast<int64_t>(code_points(s).size()) + 1;
  int64_t n = 0;
  for (size_t at = s.find(sub); at != std::string::npos; at = s.find(sub, at + sub.size())) ++n;
  return n;
}

bool affix_match(const std::string& s, const Value& affix, const Value& start, const Value& end, bool prefix,
                 const std::string& what) {
  std::string text = s;
  if (!start.is_undefined() || !end.is_undefined()) {
    text = to_str(slice(Value::string(s), start.is_undefined() ? Value::none() : start,
                        end.is_undefined() ? Value::none() : end, Value::none()));
  }
  auto one = [&](const Value& a) {
    const std::string& x = a.as_string();
    return x.size() <= text.size() &&
           (prefix ? text.compare(0, x.size(), x) == 0 : text.compare(text.size() - x.size(), x.size(), x) == 0);
  };
  if (affix.is_string()) return one(affix);
  if (affix.is_sequence_kind(ListData::Kind::kTuple)) {
    for (const Value& a : affix.as_list().items) {
      if (!a.is_string()) fail("tuple for " + what + " must only contain str, not " + type_name(a));
      if (one(a)) return true;
    }
    return false;
  }
  fail(what + " first arg must be str or a tuple of str, not " + type_name(affix));
}

// Python's str.format with positional and keyword fields and !s / !r conversions; format specs are unsupported.
std::string py_format(const std::string& fmt, const Args& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    const char c = fmt[i];
    if (c == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') {
        out.push_back('}');
        ++i;
        continue;
      }
      fail("Single '}' encountered in format string");
    }
    if (c != '{') {
      out.push_back(c);
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out.push_back('{');
      ++i;
      continue;
    }
    const size_t close = fmt.find('}', i);
    if (close == std::string::npos) fail("Single '{' encountered in format string");
    std::string field = fmt.substr(i + 1, close - i - 1);
    i = close;
    char conversion = 0;
    if (const size_t colon = field.find(':'); colon != std::string::npos) {
      if (colon + 1 < field.size()) fail_unsupported("format specs in str.format ('{" + field + "}')");
      field.resize(colon);
    }
    if (const size_t bang = field.find('!'); bang != std::string::npos) {
      if (bang + 2 != field.size()) fail("expected ':' after conversion specifier");
      conversion = field[bang + 1];
      field.resize(bang);
    }
    if (field.find_first_of(".[") != std::string::npos) fail_unsupported("attribute or index fields in str.format");
    Value v;
    if (field.empty() || std::all_of(field.begin(), field.end(), [](char d) { return d >= '0' && d <= '9'; })) {
      const size_t index = field.empty() ? auto_index++ : std::stoul(field);
      if (index >= args.positional.size()) fail("Replacement index " + std::to_string(index) + " out of range");
      v = args.positional[index];
    } else {
      const auto it =
          std::find_if(args.keyword.begin(), args.keyword.end(), [&](const auto& kv) { return kv.first == field; });
      if (it == args.keyword.end()) fail("KeyError: " + repr_string(field));
      v = it->second;
    }
    if (conversion == 'r' || conversion == 'a') {
      out += to_repr(v);
    } else if (conversion == 0 || conversion == 's') {
      out += to_str(v);
    } else {
      fail(std::string("Unknown conversion specifier ") + conversion);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Methods.

const std::set<std::string, std::less<>> kStrMethods = {
    "capitalize",   "casefold",   "center",    "count",       "encode",    "endswith",     "expandtabs",   "find",
    "format",       "format_map", "index",     "isalnum",     "isalpha",   "isascii",      "isdecimal",    "isdigit",
    "isidentifier", "islower",    "isnumeric", "isprintable", "isspace",   "istitle",      "isupper",      "join",
    "ljust",        "lower",      "lstrip",    "maketrans",   "partition", "removeprefix", "removesuffix", "replace",
    "rfind",        "rindex",     "rjust",     "rpartition",  "rsplit",    "rstrip",       "split",        "splitlines",
    "startswith",   "strip",      "swapcase",  "title",       "translate", "upper",        "zfill"};
const std::set<std::string, std::less<>> kListMethods = {"append", "clear", "copy",   "count",   "extend", "index",
                                                         "insert", "pop",   "remove", "reverse", "sort"};
const std::set<std::string, std::less<>> kListMutating = {"append", "clear",  "extend",  "insert",
                                                          "pop",    "remove", "reverse", "sort"};
const std::set<std::string, std::less<>> kDictMethods = {"clear", "copy",    "fromkeys",   "get",    "items", "keys",
                                                         "pop",   "popitem", "setdefault", "update", "values"};
const std::set<std::string, std::less<>> kDictMutating = {"clear", "pop", "popitem", "setdefault", "update"};

Value str_method(const std::string& s, const std::string& name, const Args& args) {
  const std::string what = "str." + name + "()";
  auto strip = [&](bool left, bool right) {
    ArgBinder b(args, what, {"chars"});
    const Value chars = b.get(0, Value::none());
    if (!chars.is_none() && !chars.is_string()) fail(name + " arg must be None or str");
    return Value::string(
        python_strip(s, chars.is_none() ? std::nullopt : std::optional(chars.as_string()), left, right));
  };
  if (name == "strip") return strip(true, true);
  if (name == "lstrip") return strip(true, false);
  if (name == "rstrip") return strip(false, true);
  if (name == "split" || name == "rsplit") {
    ArgBinder b(args, what, {"sep", "maxsplit"});
    return Value::list(
        py_split(s, b.get(0, Value::none()), require_int(b.get(1, Value::integer(-1)), "maxsplit"), name == "rsplit"));
  }
  if (name == "splitlines") {
    ArgBinder b(args, what, {"keepends"});
    std::vector<Value> out;
    for (auto& line : python_splitlines(s, truthy(b.get(0, Value::boolean(false))))) out.push_back(Value::string(line));
    return Value::list(std::move(out));
  }
  if (name == "startswith" || name == "endswith") {
    ArgBinder b(args, what, {"affix", "start", "end"}, 1);
    return Value::boolean(affix_match(s, b.get(0), b.get(1), b.get(2), name == "startswith", name));
  }
  if (name == "replace") {
    ArgBinder b(args, what, {"old", "new", "count"}, 2);
    return Value::string(python_replace(s, require_str(b.get(0), "replace() argument 1"),
                                        require_str(b.get(1), "replace() argument 2"),
                                        require_int(b.get(2, Value::integer(-1)), "count")));
  }
  if (name == "upper") return ArgBinder(args, what, {}), Value::string(python_upper(s));
  if (name == "lower") return ArgBinder(args, what, {}), Value::string(python_lower(s));
  if (name == "casefold")
    return ArgBinder(args, what, {}), Value::string(python_replace(python_lower(s), "ß", "ss", -1));
  if (name == "title") return ArgBinder(args, what, {}), Value::string(python_title(s));
  if (name == "capitalize") return ArgBinder(args, what, {}), Value::string(python_capitalize(s));
  if (name == "swapcase") return ArgBinder(args, what, {}), Value::string(python_swapcase(s));
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex") {
    ArgBinder b(args, what, {"sub", "start", "end"}, 1);
    const int64_t i = py_find(s, require_str(b.get(0), name + "() argument"), b.get(1), b.get(2), name[0] == 'r');
    if (i < 0 && (name == "index" || name == "rindex")) fail("substring not found");
    return Value::integer(i);
  }
  if (name == "count") {
    ArgBinder b(args, what, {"sub"}, 1);
    return Value::integer(py_count(s, require_str(b.get(0), "count() argument")));
  }
  if (name == "join") {
    ArgBinder b(args, what, {"iterable"}, 1);
    std::string out;
    size_t i = 0;
    for (const Value& item : iterate(b.get(0))) {
      if (!item.is_string()) {
        fail("sequence item " + std::to_string(i) + ": expected str instance, " + type_name(item) + " found");
      }
      if (i++) out += s;
      out += item.as_string();
    }
    return Value::string(std::move(out));
  }
  if (name == "format") return Value::string(py_format(s, args));
  if (name == "center" || name == "ljust" || name == "rjust") {
    ArgBinder b(args, what, {"width", "fillchar"}, 1);
    const std::string fill = require_str(b.get(1, Value::string(" ")), "the fill character");
    return Value::string(python_pad(s, require_int(b.get(0), "width"), fill,
                                    name == "center"  ? 0
                                    : name == "ljust" ? -1
                                                      : 1));
  }
  if (name == "zfill") {
    ArgBinder b(args, what, {"width"}, 1);
    const int64_t width = require_int(b.get(0), "width");
    const int64_t len = static_cast<int64_t>(code_points(s).size());
    if (width <= len) return Value::string(s);
    const size_t sign = !s.empty() && (s[0] == '+' || s[0] == '-') ? 1 : 0;
    return Value::string(s.substr(0, sign) + std::string(static_cast<size_t>(width - len), '0') + s.substr(sign));
  }
  if (name == "removeprefix" || name == "removesuffix") {
    ArgBinder b(args, what, {"affix"}, 1);
    const std::string a = require_str(b.get(0), name + "() argument");
    if (name == "removeprefix") return Value::string(s.compare(0, a.size(), a) == 0 ? s.substr(a.size()) : s);
    return Value::string(a.size() <= s.size() && s.compare(s.size() - a.size(), a.size(), a) == 0
                             ? s.substr(0, s.size() - a.size())
                             : s);
  }
  if (name == "partition" || name == "rpartition") {
    ArgBinder b(args, what, {"sep"}, 1);
    const std::string sep = require_str(b.get(0), name + "() argument");
    if (sep.empty()) fail("empty separator");
    const size_t at = name == "partition" ? s.find(sep) : s.rfind(sep);
    if (at == std::string::npos) {
      return name == "partition"
                 ? Value::list({Value::string(s), Value::string(""), Value::string("")}, ListData::Kind::kTuple)
                 : Value::list({Value::string(""), Value::string(""), Value::string(s)}, ListData::Kind::kTuple);
    }
    return Value::list({Value::string(s.substr(0, at)), Value::string(sep), Value::string(s.substr(at + sep.size()))},
                       ListData::Kind::kTuple);
  }
  auto all_of = [&](auto pred) {
    ArgBinder b(args, what, {});
    const auto cps = code_points(s);
    return Value::boolean(!cps.empty() && std::all_of(cps.begin(), cps.end(), pred));
  };
  if (name == "isalpha") return all_of(is_alpha);
  if (name == "isdigit" || name == "isdecimal") return all_of(is_decimal);
  if (name == "isnumeric") return all_of(is_numeric_cp);
  if (name == "isalnum") return all_of([](char32_t cp) { return is_alpha(cp) || is_numeric_cp(cp); });
  if (name == "isspace") return all_of(is_python_space);
  if (name == "isascii") {
    ArgBinder b(args, what, {});
    return Value::boolean(std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; }));
  }
  if (name == "islower" || name == "isupper") {
    ArgBinder b(args, what, {});
    const auto cps = code_points(s);
    const auto wrong = name == "islower" ? is_cased_upper : is_cased_lower;
    return Value::boolean(std::any_of(cps.begin(), cps.end(), is_cased) && std::none_of(cps.begin(), cps.end(), wrong));
  }
  fail_unsupported("the str method '" + name + "' (not in palign's Jinja subset)");
}

}  // namespace

bool is_method(const Value& obj, const std::string& name, bool* mutating) {
  *mutating = false;
  if (obj.is_string()) return kStrMethods.count(name) > 0;
  if (obj.is_dict()) {
    *mutating = kDictMutating.count(name) > 0;
    return kDictMethods.count(name) > 0;
  }
  if (obj.is_list()) {
    switch (obj.as_list().kind) {
      case ListData::Kind::kList:
        *mutating = kListMutating.count(name) > 0;
        return kListMethods.count(name) > 0;
      case ListData::Kind::kTuple:
      case ListData::Kind::kRange:
        return name == "count" || name == "index";
      default:
        return false;
    }
  }
  return false;
}

namespace {

// A method of markupsafe.Markup (3.0): the result is Markup again (lists of Markup for split and partition);
// join escapes its items, replace its replacement, center / ljust / rjust their fill character.
Value markup_method(const Value& obj, const std::string& name, const Args& args) {
  static const std::set<std::string, std::less<>> kWrapped = {
      "capitalize",   "casefold",     "center",   "join",  "ljust",      "lower",  "lstrip", "partition",
      "removeprefix", "removesuffix", "replace",  "rjust", "rpartition", "rsplit", "rstrip", "split",
      "splitlines",   "strip",        "swapcase", "title", "upper",      "zfill"};
  if (name == "format" || name == "format_map") fail_unsupported("str.format on a Markup string");
  if (!kWrapped.count(name)) return str_method(obj.as_string(), name, args);
  Args escaped = args;
  auto escape_positional = [&](size_t i) {
    if (i < escaped.positional.size()) escaped.positional[i] = escape_value(escaped.positional[i]);
  };
  if (name == "join") {
    std::vector<Value> items;
    for (const Value& item : iterate(args.positional.empty() ? Value() : args.positional[0])) {
      items.push_back(escape_value(item));
    }
    escaped.positional = {Value::list(std::move(items))};
  } else if (name == "replace") {
    escape_positional(1);
  } else if (name == "center" || name == "ljust" || name == "rjust") {
    escape_positional(1);
  }
  const Value r = str_method(obj.as_string(), name, escaped);
  if (r.is_string()) return Value::markup(r.as_string());
  std::vector<Value> items;
  for (const Value& item : r.as_list().items) items.push_back(Value::markup(item.as_string()));
  return Value::list(std::move(items), r.as_list().kind);
}

}  // namespace

Value call_method(Interpreter&, const Value& obj, const std::string& name, const Args& args) {
  if (obj.is_markup()) return markup_method(obj, name, args);
  if (obj.is_string()) return str_method(obj.as_string(), name, args);
  const std::string what = type_name(obj) + "." + name + "()";
  if (obj.is_dict()) {
    const DictData& d = obj.as_dict();
    if (name == "get") {
      ArgBinder b(args, what, {"key", "default"}, 1);
      const Value* v = d.find(b.get(0));
      return v ? *v : b.get(1, Value::none());
    }
    std::vector<Value> out;
    if (name == "items" || name == "keys" || name == "values") {
      ArgBinder b(args, what, {});
      for (const auto& [k, v] : d.items) {
        out.push_back(name == "items" ? Value::list({k, v}, ListData::Kind::kTuple) : name == "keys" ? k : v);
      }
      return Value::list(std::move(out), name == "items"  ? ListData::Kind::kDictItems
                                         : name == "keys" ? ListData::Kind::kDictKeys
                                                          : ListData::Kind::kDictValues);
    }
    if (name == "copy") return ArgBinder(args, what, {}), obj;
    fail_unsupported("the dict method '" + name + "'");
  }
  if (obj.is_list()) {
    const auto& items = obj.as_list().items;
    if (name == "count") {
      ArgBinder b(args, what, {"value"}, 1);
      return Value::integer(
          std::count_if(items.begin(), items.end(), [&](const Value& v) { return equal(v, b.get(0)); }));
    }
    if (name == "index") {
      ArgBinder b(args, what, {"value"}, 1);
      for (size_t i = 0; i < items.size(); ++i) {
        if (equal(items[i], b.get(0))) return Value::integer(static_cast<int64_t>(i));
      }
      fail(to_repr(b.get(0)) + " is not in list");
    }
    if (name == "copy") return ArgBinder(args, what, {}), Value::list(items);
  }
  fail_unsupported("the method '" + name + "' of " + type_name(obj));
}

// ---------------------------------------------------------------------------------------------------------------
// Globals.

namespace {

using GlobalFn = Value (*)(Interpreter& interp, Args args);

class Function : public Object {
 public:
  Function(std::string name, GlobalFn fn, std::string repr = {})
      : name_(std::move(name)), fn_(fn), repr_(std::move(repr)) {}
  std::string type_name() const override { return repr_.empty() ? "function" : "type"; }
  std::string str() const override { return repr_.empty() ? Object::str() : repr_; }
  bool callable() const override { return true; }
  Value call(Interpreter& interp, Args args) override { return fn_(interp, std::move(args)); }

 private:
  std::string name_;
  GlobalFn fn_;
  std::string repr_;
};

Value g_range(Interpreter&, Args args) {
  if (!args.keyword.empty()) fail("range() takes no keyword arguments");
  if (args.positional.empty() || args.positional.size() > 3) fail("range expected at most 3 arguments");
  std::vector<int64_t> v;
  for (const Value& a : args.positional) v.push_back(require_int(a, "range()"));
  const int64_t start = v.size() == 1 ? 0 : v[0];
  const int64_t stop = v.size() == 1 ? v[0] : v[1];
  const int64_t step = v.size() == 3 ? v[2] : 1;
  if (step == 0) fail("range() arg 3 must not be zero");
  auto data = std::make_shared<ListData>();
  data->kind = ListData::Kind::kRange;
  data->range_start = start;
  data->range_stop = stop;
  data->range_step = step;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    if (static_cast<int64_t>(data->items.size()) >= kMaxRange) {
      fail("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
    }
    data->items.push_back(Value::integer(i));
  }
  return Value::list(ListPtr(std::move(data)));
}

Value g_dict(Interpreter&, Args args) {
  DictData d;
  if (args.positional.size() > 1) fail("dict expected at most 1 argument");
  if (!args.positional.empty()) {
    const Value& src = args.positional[0];
    if (src.is_dict()) {
      d = src.as_dict();
    } else {
      for (const Value& pair : iterate(src)) {
        const std::vector<Value> kv = iterate(pair);
        if (kv.size() != 2)
          fail("dictionary update sequence element has length " + std::to_string(kv.size()) + "; 2 is required");
        d.set(kv[0], kv[1]);
      }
    }
  }
  for (const auto& [k, v] : args.keyword) d.set(Value::string(k), v);
  return Value::dict(std::move(d));
}

Value g_namespace(Interpreter& interp, Args args) {
  const Value init = g_dict(interp, std::move(args));
  auto ns = std::make_shared<Namespace>();
  for (const auto& [k, v] : init.as_dict().items) {
    if (!k.is_string()) fail("keywords must be strings");
    ns->set(k.as_string(), v);
  }
  return Value::object(std::move(ns));
}

Value g_raise_exception(Interpreter&, Args args) {
  ArgBinder b(args, "raise_exception()", {"message"}, 1);
  throw Failure{FailureKind::kRaised, to_str(b.get(0))};
}

Value g_strftime_now(Interpreter& interp, Args args) {
  ArgBinder b(args, "strftime_now()", {"format"}, 1);
  return Value::string(interp.strftime_now()(require_str(b.get(0), "strftime_now() argument")));
}

class Joiner : public Object {
 public:
  explicit Joiner(std::string sep) : sep_(std::move(sep)) {}
  std::string type_name() const override { return "Joiner"; }
  bool callable() const override { return true; }
  Value call(Interpreter&, Args args) override {
    ArgBinder b(args, "joiner()", {});
    if (!used_) {
      used_ = true;
      return Value::string("");
    }
    return Value::string(sep_);
  }

 private:
  std::string sep_;
  bool used_ = false;
};

Value g_joiner(Interpreter&, Args args) {
  ArgBinder b(args, "joiner()", {"sep"});
  return Value::object(std::make_shared<Joiner>(to_str(b.get(0, Value::string(", ")))));
}

class Cycler : public Object {
 public:
  struct State {
    std::vector<Value> items;
    size_t pos = 0;
  };
  explicit Cycler(std::vector<Value> items) : state_(std::make_shared<State>(State{std::move(items)})) {}
  std::string type_name() const override { return "Cycler"; }
  Value attr(const std::string& name) const override {
    if (name == "current") return state_->items[state_->pos];
    if (name == "next" || name == "reset") return Value::object(std::make_shared<Method>(state_, name == "next"));
    return Object::attr(name);
  }

 private:
  class Method : public Object {
   public:
    Method(std::shared_ptr<State> state, bool next) : state_(std::move(state)), next_(next) {}
    std::string type_name() const override { return "method"; }
    bool callable() const override { return true; }
    Value call(Interpreter&, Args args) override {
      ArgBinder b(args, next_ ? "cycler.next()" : "cycler.reset()", {});
      if (!next_) {
        state_->pos = 0;
        return Value::none();
      }
      Value v = state_->items[state_->pos];
      state_->pos = (state_->pos + 1) % state_->items.size();
      return v;
    }

   private:
    std::shared_ptr<State> state_;
    bool next_;
  };

  std::shared_ptr<State> state_;
};

Value g_cycler(Interpreter&, Args args) {
  if (!args.keyword.empty() || args.positional.empty()) fail("cycler() needs at least one positional item");
  return Value::object(std::make_shared<Cycler>(std::move(args.positional)));
}

Value g_lipsum(Interpreter&, Args) { fail_unsupported("the global 'lipsum' (random text)"); }

}  // namespace

std::optional<Value> find_global(Interpreter& interp, const std::string& name) {
  static const std::map<std::string, std::pair<GlobalFn, const char*>, std::less<>> kGlobals = {
      {"range", {g_range, "<class 'range'>"}},
      {"dict", {g_dict, "<class 'dict'>"}},
      {"namespace", {g_namespace, "<class 'jinja2.utils.Namespace'>"}},
      {"joiner", {g_joiner, "<class 'jinja2.utils.Joiner'>"}},
      {"cycler", {g_cycler, "<class 'jinja2.utils.Cycler'>"}},
      {"lipsum", {g_lipsum, ""}},
      {"raise_exception", {g_raise_exception, ""}},
      {"strftime_now", {g_strftime_now, ""}},
  };
  if (name == "strftime_now" && !interp.strftime_now()) return std::nullopt;
  const auto it = kGlobals.find(name);
  if (it == kGlobals.end()) return std::nullopt;
  return Value::object(std::make_shared<Function>(name, it->second.first, it->second.second));
}

}  // namespace palign::runtime::jinja
