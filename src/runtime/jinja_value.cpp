// Python semantics of the Jinja interpreter's values (jinja_internal.h): str() and repr() as CPython 3 writes them
// (float repr is the shortest round trip; strings pick their quote and escape non-printable characters), ==, <, in,
// arithmetic with Python's floor division and modulo, len(), iteration, jinja2's sandboxed getattr / getitem with
// its Undefined messages, and slicing with negative steps.
#include <utf8proc.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>

#include "jinja_internal.h"
#include "unicode.h"

namespace palign::runtime::jinja {

void fail(std::string message) { throw Failure{FailureKind::kRuntime, std::move(message)}; }
void fail_unsupported(std::string message) { throw Failure{FailureKind::kUnsupported, std::move(message)}; }

namespace {

constexpr size_t kMaxValueBytes = size_t{1} << 26;  // str * n and list * n beyond this fail instead of allocating

[[noreturn]] void fail_undefined(const Value& v) { fail(v.undefined_message()); }

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// Value construction.

Value Value::undefined(std::string message) {
  return Value(UndefinedValue{std::make_shared<const std::string>(std::move(message))});
}

Value Value::list(std::vector<Value> items, ListData::Kind kind) {
  auto data = std::make_shared<ListData>();
  data->items = std::move(items);
  data->kind = kind;
  return Value(ListPtr(std::move(data)));
}

Value Value::dict(DictData data) { return Value(DictPtr(std::make_shared<const DictData>(std::move(data)))); }

std::string Value::undefined_message() const {
  const auto& u = std::get<UndefinedValue>(data_);
  return u.message ? *u.message : std::string("the value is undefined");
}

namespace {

void check_hashable(const Value& key) {
  if (key.is_dict() ||
      (key.is_list() && key.as_list().kind != ListData::Kind::kTuple && key.as_list().kind != ListData::Kind::kRange)) {
    fail("unhashable type: '" + type_name(key) + "'");
  }
  if (key.is_list()) {
    for (const Value& item : key.as_list().items) check_hashable(item);
  }
}

}  // namespace

const Value* DictData::find(const Value& key) const {
  check_hashable(key);
  for (const auto& [k, v] : items) {
    if (equal(k, key)) return &v;
  }
  return nullptr;
}

void DictData::set(Value key, Value value) {
  check_hashable(key);
  for (auto& [k, v] : items) {
    if (equal(k, key)) {
      v = std::move(value);
      return;
    }
  }
  items.emplace_back(std::move(key), std::move(value));
}

// ---------------------------------------------------------------------------------------------------------------
// Arguments and objects.

ArgBinder::ArgBinder(const Args& args, std::string what, std::vector<std::string_view> names, size_t required)
    : bound_(names.size()) {
  if (args.positional.size() > names.size()) {
    fail(what + " takes at most " + std::to_string(names.size()) + " argument(s) (" +
         std::to_string(args.positional.size()) + " given)");
  }
  for (size_t i = 0; i < args.positional.size(); ++i) bound_[i] = args.positional[i];
  for (const auto& [key, value] : args.keyword) {
    const auto it = std::find(names.begin(), names.end(), key);
    if (it == names.end()) fail(what + " got an unexpected keyword argument '" + key + "'");
    auto& slot = bound_[static_cast<size_t>(it - names.begin())];
    if (slot) fail(what + " got multiple values for argument '" + key + "'");
    slot = value;
  }
  for (size_t i = 0; i < required; ++i) {
    if (!bound_[i]) fail(what + " is missing the required argument '" + std::string(names[i]) + "'");
  }
}

Value ArgBinder::get(size_t index, Value fallback) const { return bound_[index] ? *bound_[index] : fallback; }

std::string Object::str() const {
  fail_unsupported("printing a " + type_name() +
                   " object (jinja2 would print its memory address, which no fixture can match)");
}

Value Object::attr(const std::string& name) const {
  return Value::undefined(repr_string(object_type_repr()) + " has no attribute " + repr_string(name));
}

Value Object::call(Interpreter&, Args) { fail("'" + type_name() + "' object is not callable"); }

std::string Namespace::str() const { return "<Namespace " + to_repr(Value::dict(attrs_)) + ">"; }

Value Namespace::attr(const std::string& name) const {
  if (const Value* v = attrs_.find(Value::string(name))) return *v;
  return Object::attr(name);
}

void Namespace::set(const std::string& name, Value value) { attrs_.set(Value::string(name), std::move(value)); }

std::optional<Value> IteratorObject::next() {
  if (pos_ >= items_.size()) return std::nullopt;
  return std::move(items_[pos_++]);
}

Value make_iterator(std::string type_name, std::vector<Value> items) {
  return Value::object(std::make_shared<IteratorObject>(std::move(type_name), std::move(items)));
}

// ---------------------------------------------------------------------------------------------------------------
// Type names, truth, str() and repr().

std::string type_name(const Value& v) {
  switch (v.type()) {
    case Value::Type::kUndefined:
      return "Undefined";
    case Value::Type::kNone:
      return "NoneType";
    case Value::Type::kBool:
      return "bool";
    case Value::Type::kInt:
      return "int";
    case Value::Type::kFloat:
      return "float";
    case Value::Type::kString:
      return "str";
    case Value::Type::kList:
      switch (v.as_list().kind) {
        case ListData::Kind::kList:
          return "list";
        case ListData::Kind::kTuple:
          return "tuple";
        case ListData::Kind::kRange:
          return "range";
        case ListData::Kind::kDictKeys:
          return "dict_keys";
        case ListData::Kind::kDictValues:
          return "dict_values";
        case ListData::Kind::kDictItems:
          return "dict_items";
      }
      break;
    case Value::Type::kDict:
      return "dict";
    case Value::Type::kObject:
      return v.as_object()->type_name();
  }
  return "object";
}

std::string object_type_repr(const Value& v) {
  if (v.is_none()) return "None";
  if (v.is_object()) return v.as_object()->object_type_repr();
  return type_name(v) + " object";
}

bool truthy(const Value& v) {
  switch (v.type()) {
    case Value::Type::kUndefined:
    case Value::Type::kNone:
      return false;
    case Value::Type::kBool:
      return v.as_bool();
    case Value::Type::kInt:
      return v.as_int() != 0;
    case Value::Type::kFloat:
      return v.as_double() != 0.0;
    case Value::Type::kString:
      return !v.as_string().empty();
    case Value::Type::kList:
      return !v.as_list().items.empty();
    case Value::Type::kDict:
      return !v.as_dict().items.empty();
    case Value::Type::kObject:
      return true;
  }
  return false;
}

std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  const std::string sci(buf, res.ptr);  // shortest round trip: "-1.2345e+02"
  const size_t e_pos = sci.find('e');
  std::string mantissa = sci.substr(0, e_pos);
  const int exp10 = std::stoi(sci.substr(e_pos + 1));
  std::string sign;
  if (mantissa[0] == '-') {
    sign = "-";
    mantissa.erase(0, 1);
  }
  std::string digits;
  for (char c : mantissa) {
    if (c != '.') digits.push_back(c);
  }
  // CPython's float_repr_style 'short': exponent form when the decimal point is < -4 or > 16 places from the start.
  const int decpt = exp10 + 1;
  if (decpt <= -4 || decpt > 16) {
    std::string out = sign + digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char exp_buf[16];
    std::snprintf(exp_buf, sizeof(exp_buf), "e%c%02d", exp10 < 0 ? '-' : '+', std::abs(exp10));
    return out + exp_buf;
  }
  std::string out;
  if (decpt <= 0) {
    out = "0." + std::string(static_cast<size_t>(-decpt), '0') + digits;
  } else if (static_cast<size_t>(decpt) >= digits.size()) {
    out = digits + std::string(static_cast<size_t>(decpt) - digits.size(), '0') + ".0";
  } else {
    out = digits.substr(0, static_cast<size_t>(decpt)) + "." + digits.substr(static_cast<size_t>(decpt));
  }
  return sign + out;
}

namespace {

// str.isprintable() for one code point: not Cc, Cf, Cs, Co, Cn, Zl, Zp or Zs (space excepted).
bool is_printable(char32_t cp) {
  if (cp == ' ') return true;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_ZS:
      return false;
    default:
      return true;
  }
}

std::string join_repr(const std::vector<Value>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    out += to_repr(items[i]);
  }
  return out;
}

}  // namespace

std::string repr_string(std::string_view s) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (size_t pos = 0; pos < s.size();) {
    const char32_t cp = unicode::next_code_point(s, pos);
    char buf[16];
    if (cp == static_cast<char32_t>(quote) || cp == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(cp));
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp < 0x20 || cp == 0x7f) {
      std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned>(cp));
      out += buf;
    } else if (cp < 0x7f || is_printable(cp)) {
      unicode::append_utf8(out, cp);
    } else {
      std::snprintf(buf, sizeof(buf),
                    cp <= 0xff     ? "\\x%02x"
                    : cp <= 0xffff ? "\\u%04x"
                                   : "\\U%08x",
                    static_cast<unsigned>(cp));
      out += buf;
    }
  }
  out.push_back(quote);
  return out;
}

std::string to_repr(const Value& v) {
  switch (v.type()) {
    case Value::Type::kUndefined:
      return "Undefined";
    case Value::Type::kString:
      return v.is_markup() ? "Markup(" + repr_string(v.as_string()) + ")" : repr_string(v.as_string());
    case Value::Type::kList: {
      const ListData& l = v.as_list();
      switch (l.kind) {
        case ListData::Kind::kList:
          return "[" + join_repr(l.items) + "]";
        case ListData::Kind::kTuple:
          return "(" + join_repr(l.items) + (l.items.size() == 1 ? ",)" : ")");
        case ListData::Kind::kRange: {
          std::string out = "range(" + std::to_string(l.range_start) + ", " + std::to_string(l.range_stop);
          if (l.range_step != 1) out += ", " + std::to_string(l.range_step);
          return out + ")";
        }
        case ListData::Kind::kDictKeys:
          return "dict_keys([" + join_repr(l.items) + "])";
        case ListData::Kind::kDictValues:
          return "dict_values([" + join_repr(l.items) + "])";
        case ListData::Kind::kDictItems:
          return "dict_items([" + join_repr(l.items) + "])";
      }
      break;
    }
    case Value::Type::kDict: {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, val] : v.as_dict().items) {
        if (!first) out += ", ";
        first = false;
        out += to_repr(k) + ": " + to_repr(val);
      }
      return out + "}";
    }
    default:
      break;
  }
  return to_str(v);
}

std::string to_str(const Value& v) {
  switch (v.type()) {
    case Value::Type::kUndefined:
      return "";
    case Value::Type::kNone:
      return "None";
    case Value::Type::kBool:
      return v.as_bool() ? "True" : "False";
    case Value::Type::kInt:
      return std::to_string(v.as_int());
    case Value::Type::kFloat:
      return float_repr(v.as_double());
    case Value::Type::kString:
      return v.as_string();
    case Value::Type::kList:
    case Value::Type::kDict:
      return to_repr(v);
    case Value::Type::kObject:
      return v.as_object()->str();
  }
  return "";
}

// ---------------------------------------------------------------------------------------------------------------
// Comparison.

bool equal(const Value& a, const Value& b) {
  if (a.is_undefined() || b.is_undefined()) return a.is_undefined() && b.is_undefined();
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() == b.as_double();
    return a.as_int() == b.as_int();
  }
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case Value::Type::kNone:
      return true;
    case Value::Type::kString:
      return a.as_string() == b.as_string();
    case Value::Type::kList: {
      const ListData& x = a.as_list();
      const ListData& y = b.as_list();
      if (x.kind != y.kind || x.items.size() != y.items.size()) return false;
      if (x.kind == ListData::Kind::kDictValues) return &x == &y;
      for (size_t i = 0; i < x.items.size(); ++i) {
        if (!equal(x.items[i], y.items[i])) return false;
      }
      return true;
    }
    case Value::Type::kDict: {
      const DictData& x = a.as_dict();
      const DictData& y = b.as_dict();
      if (x.items.size() != y.items.size()) return false;
      for (const auto& [k, v] : x.items) {
        const Value* other = y.find(k);
        if (!other || !equal(v, *other)) return false;
      }
      return true;
    }
    case Value::Type::kObject:
      return a.as_object() == b.as_object();
    default:
      return false;
  }
}

bool less(const Value& a, const Value& b, std::string_view op) {
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() < b.as_double();
    return a.as_int() < b.as_int();
  }
  if (a.is_string() && b.is_string()) return a.as_string() < b.as_string();
  if (a.is_list() && b.is_list() && a.as_list().kind == b.as_list().kind &&
      (a.as_list().kind == ListData::Kind::kList || a.as_list().kind == ListData::Kind::kTuple)) {
    const auto& x = a.as_list().items;
    const auto& y = b.as_list().items;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!equal(x[i], y[i])) return less(x[i], y[i], op);
    }
    return x.size() < y.size();
  }
  fail("'" + std::string(op) + "' not supported between instances of '" + type_name(a) + "' and '" + type_name(b) +
       "'");
}

bool contains(const Value& container, const Value& item) {
  switch (container.type()) {
    case Value::Type::kUndefined:
      return false;
    case Value::Type::kString:
      if (!item.is_string()) fail("'in <string>' requires string as left operand, not " + type_name(item));
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Type::kList:
      for (const Value& v : container.as_list().items) {
        if (equal(v, item)) return true;
      }
      return false;
    case Value::Type::kDict:
      return container.as_dict().find(item) != nullptr;
    case Value::Type::kObject:
      if (container.as_object()->is_iterator()) {
        while (auto v = container.as_object()->next()) {
          if (equal(*v, item)) return true;
        }
        return false;
      }
      break;
    default:
      break;
  }
  fail("argument of type '" + type_name(container) + "' is not iterable");
}

// ---------------------------------------------------------------------------------------------------------------
// Arithmetic.

namespace {

void check_overflow(bool overflow) {
  if (overflow) fail_unsupported("an integer result beyond 64 bits (Python's ints are unbounded)");
}

int64_t add_int(int64_t a, int64_t b) {
  int64_t r = 0;
  check_overflow(__builtin_add_overflow(a, b, &r));
  return r;
}

int64_t sub_int(int64_t a, int64_t b) {
  int64_t r = 0;
  check_overflow(__builtin_sub_overflow(a, b, &r));
  return r;
}

int64_t mul_int(int64_t a, int64_t b) {
  int64_t r = 0;
  check_overflow(__builtin_mul_overflow(a, b, &r));
  return r;
}

Value repeat(const Value& seq, int64_t n) {
  if (n < 0) n = 0;
  if (seq.is_string()) {
    const std::string& s = seq.as_string();
    if (!s.empty() && static_cast<uint64_t>(n) > kMaxValueBytes / s.size()) fail("the repeated string is too large");
    std::string out;
    out.reserve(s.size() * static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) out += s;
    return Value::string(std::move(out));
  }
  const ListData& l = seq.as_list();
  if (!l.items.empty() && static_cast<uint64_t>(n) > kMaxValueBytes / 16 / l.items.size()) {
    fail("the repeated list is too large");
  }
  std::vector<Value> out;
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), l.items.begin(), l.items.end());
  return Value::list(std::move(out), l.kind);
}

bool is_plain_sequence(const Value& v) {
  return v.is_list() && (v.as_list().kind == ListData::Kind::kList || v.as_list().kind == ListData::Kind::kTuple);
}

[[noreturn]] void unsupported_operands(std::string_view op, const Value& a, const Value& b) {
  fail("unsupported operand type(s) for " + std::string(op) + ": '" + type_name(a) + "' and '" + type_name(b) + "'");
}

int64_t floor_div(int64_t a, int64_t b) {
  check_overflow(a == std::numeric_limits<int64_t>::min() && b == -1);
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t py_mod(int64_t a, int64_t b) {
  if (b == -1) return 0;
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

double py_fmod(double a, double b) {
  double r = std::fmod(a, b);
  if (r != 0.0) {
    if ((b < 0) != (r < 0)) r += b;
  } else {
    r = std::copysign(0.0, b);
  }
  return r;
}

}  // namespace

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

Value escape_value(const Value& v) { return v.is_markup() ? v : Value::markup(html_escape(to_str(v))); }

Value binary_op(std::string_view op, const Value& a, const Value& b) {
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  if (op == "+" && a.is_string() && b.is_string() && (a.is_markup() || b.is_markup())) {
    return Value::markup(escape_value(a).as_string() + escape_value(b).as_string());
  }
  if (op == "*" && (a.is_markup() || b.is_markup())) {
    const Value r = binary_op(op, Value::string(to_str(a.is_markup() ? a : b)), a.is_markup() ? b : a);
    return Value::markup(r.as_string());
  }
  if (op == "%" && a.is_markup()) return Value::markup(percent_format(a.as_string(), b, /*escape_args=*/true));
  const bool numbers = a.is_number() && b.is_number();
  const bool floats = numbers && (a.is_float() || b.is_float());
  if (op == "+") {
    if (numbers) {
      if (floats) return Value::number(a.as_double() + b.as_double());
      return Value::integer(add_int(a.as_int(), b.as_int()));
    }
    if (a.is_string() && b.is_string()) {
      if (a.as_string().size() + b.as_string().size() > kMaxValueBytes) fail("the concatenated string is too large");
      return Value::string(a.as_string() + b.as_string());
    }
    if (is_plain_sequence(a) && is_plain_sequence(b) && a.as_list().kind == b.as_list().kind) {
      std::vector<Value> items = a.as_list().items;
      items.insert(items.end(), b.as_list().items.begin(), b.as_list().items.end());
      return Value::list(std::move(items), a.as_list().kind);
    }
    if (a.is_string() || is_plain_sequence(a)) {
      fail("can only concatenate " + type_name(a) + " (not \"" + type_name(b) + "\") to " + type_name(a));
    }
    unsupported_operands(op, a, b);
  }
  if (op == "-") {
    if (!numbers) unsupported_operands(op, a, b);
    if (floats) return Value::number(a.as_double() - b.as_double());
    return Value::integer(sub_int(a.as_int(), b.as_int()));
  }
  if (op == "*") {
    if (numbers) {
      if (floats) return Value::number(a.as_double() * b.as_double());
      return Value::integer(mul_int(a.as_int(), b.as_int()));
    }
    if ((a.is_string() || is_plain_sequence(a)) && b.is_integral()) return repeat(a, b.as_int());
    if ((b.is_string() || is_plain_sequence(b)) && a.is_integral()) return repeat(b, a.as_int());
    if (a.is_string() || is_plain_sequence(a) || b.is_string() || is_plain_sequence(b)) {
      const Value& n = a.is_string() || is_plain_sequence(a) ? b : a;
      fail("can't multiply sequence by non-int of type '" + type_name(n) + "'");
    }
    unsupported_operands(op, a, b);
  }
  if (op == "/") {
    if (!numbers) unsupported_operands(op, a, b);
    if (b.as_double() == 0.0) fail(floats ? "float division by zero" : "division by zero");
    return Value::number(a.as_double() / b.as_double());
  }
  if (op == "//") {
    if (!numbers) unsupported_operands(op, a, b);
    if (floats) {
      if (b.as_double() == 0.0) fail("float floor division by zero");
      return Value::number(std::floor(a.as_double() / b.as_double()));
    }
    if (b.as_int() == 0) fail("integer division or modulo by zero");
    return Value::integer(floor_div(a.as_int(), b.as_int()));
  }
  if (op == "%") {
    if (a.is_string()) return Value::string(percent_format(a.as_string(), b));
    if (!numbers) unsupported_operands(op, a, b);
    if (floats) {
      if (b.as_double() == 0.0) fail("float modulo");
      return Value::number(py_fmod(a.as_double(), b.as_double()));
    }
    if (b.as_int() == 0) fail("integer division or modulo by zero");
    return Value::integer(py_mod(a.as_int(), b.as_int()));
  }
  if (op == "**") {
    if (!numbers) unsupported_operands(op, a, b);
    if (!floats && b.as_int() >= 0) {
      int64_t result = 1, base = a.as_int();
      for (int64_t e = b.as_int(); e > 0; e >>= 1) {
        if (e & 1) result = mul_int(result, base);
        if (e > 1) base = mul_int(base, base);
      }
      return Value::integer(result);
    }
    if (a.as_double() == 0.0 && b.as_double() < 0) fail("0.0 cannot be raised to a negative power");
    const double r = std::pow(a.as_double(), b.as_double());
    if (std::isnan(r) && !std::isnan(a.as_double()) && !std::isnan(b.as_double())) {
      fail_unsupported("a negative number raised to a fractional power (Python returns a complex number)");
    }
    return Value::number(r);
  }
  fail_unsupported("the operator '" + std::string(op) + "'");
}

Value negate(const Value& v) {
  if (v.is_undefined()) fail_undefined(v);
  if (v.is_float()) return Value::number(-v.as_double());
  if (v.is_integral()) {
    return Value::integer(sub_int(0, v.as_int()));
  }
  fail("bad operand type for unary -: '" + type_name(v) + "'");
}

// ---------------------------------------------------------------------------------------------------------------
// Iteration, len(), attributes and items.

std::vector<Value> iterate(const Value& v) {
  switch (v.type()) {
    case Value::Type::kUndefined:
      return {};
    case Value::Type::kString: {
      std::vector<Value> out;
      const std::string& s = v.as_string();
      for (size_t pos = 0; pos < s.size();) {
        const size_t start = pos;
        unicode::next_code_point(s, pos);
        out.push_back(Value::string(s.substr(start, pos - start)));
      }
      return out;
    }
    case Value::Type::kList:
      return v.as_list().items;
    case Value::Type::kDict: {
      std::vector<Value> out;
      for (const auto& [k, val] : v.as_dict().items) out.push_back(k);
      return out;
    }
    case Value::Type::kObject:
      if (v.as_object()->is_iterator()) {
        std::vector<Value> out;
        while (auto item = v.as_object()->next()) out.push_back(std::move(*item));
        return out;
      }
      break;
    default:
      break;
  }
  fail("'" + type_name(v) + "' object is not iterable");
}

int64_t length(const Value& v) {
  switch (v.type()) {
    case Value::Type::kUndefined:
      return 0;
    case Value::Type::kString:
      return static_cast<int64_t>(code_points(v.as_string()).size());
    case Value::Type::kList:
      return static_cast<int64_t>(v.as_list().items.size());
    case Value::Type::kDict:
      return static_cast<int64_t>(v.as_dict().items.size());
    default:
      break;
  }
  fail("object of type '" + type_name(v) + "' has no len()");
}

namespace {

class BoundMethod : public Object {
 public:
  BoundMethod(Value self, std::string name) : self_(std::move(self)), name_(std::move(name)) {}
  std::string type_name() const override { return "builtin_function_or_method"; }
  bool callable() const override { return true; }
  Value call(Interpreter& interp, Args args) override { return call_method(interp, self_, name_, args); }

 private:
  Value self_;
  std::string name_;
};

Value missing_attribute(const Value& obj, const std::string& name) {
  return Value::undefined(repr_string(object_type_repr(obj)) + " has no attribute " + repr_string(name));
}

Value missing_element(const Value& obj, const Value& key) {
  if (key.is_string()) return missing_attribute(obj, key.as_string());
  return Value::undefined(object_type_repr(obj) + " has no element " + to_repr(key));
}

// The method attribute name of obj, or nullopt when its type has none by that name.
std::optional<Value> method_attr(const Value& obj, const std::string& name) {
  bool mutating = false;
  if (!is_method(obj, name, &mutating)) return std::nullopt;
  if (mutating) {
    return Value::undefined("access to attribute " + repr_string(name) + " of " + repr_string(type_name(obj)) +
                            " object is unsafe.");
  }
  return Value::object(std::make_shared<BoundMethod>(obj, name));
}

// The attributes of Python's int and float (and bool) objects.
std::optional<Value> number_attr(const Value& obj, const std::string& name) {
  if (!obj.is_number()) return std::nullopt;
  if (name == "real") return obj.is_float() ? obj : Value::integer(obj.as_int());
  if (name == "imag") return obj.is_float() ? Value::number(0.0) : Value::integer(0);
  if (!obj.is_float() && name == "numerator") return Value::integer(obj.as_int());
  if (!obj.is_float() && name == "denominator") return Value::integer(1);
  static const char* const kMethods[] = {"conjugate",        "bit_length", "bit_count", "to_bytes", "from_bytes",
                                         "as_integer_ratio", "is_integer", "hex",       "fromhex"};
  for (const char* m : kMethods) {
    if (name == m) fail_unsupported("the " + type_name(obj) + " attribute '" + name + "'");
  }
  return std::nullopt;
}

}  // namespace

Value get_python_attr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) fail_undefined(obj);
  if (obj.is_object()) return obj.as_object()->attr(name);
  if (auto m = method_attr(obj, name)) return *m;
  if (auto n = number_attr(obj, name)) return *n;
  return missing_attribute(obj, name);
}

Value get_attr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) fail_undefined(obj);
  if (obj.is_object()) return obj.as_object()->attr(name);
  if (auto m = method_attr(obj, name)) return *m;
  if (obj.is_dict()) {
    if (const Value* v = obj.as_dict().find(Value::string(name))) return *v;
  }
  if (auto n = number_attr(obj, name)) return *n;
  return missing_attribute(obj, name);
}

namespace {

// Python's sequence index: the position for key in a sequence of n items, or -1 when out of range.
int64_t sequence_index(const Value& key, int64_t n) {
  int64_t i = key.as_int();
  if (i < 0) i += n;
  return i < 0 || i >= n ? -1 : i;
}

}  // namespace

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) fail_undefined(obj);
  switch (obj.type()) {
    case Value::Type::kString:
      if (key.is_integral()) {
        const auto cps = code_points(obj.as_string());
        const int64_t i = sequence_index(key, static_cast<int64_t>(cps.size()));
        if (i >= 0) {
          std::string c = from_code_points(cps, static_cast<size_t>(i), static_cast<size_t>(i) + 1);
          return obj.is_markup() ? Value::markup(std::move(c)) : Value::string(std::move(c));
        }
      }
      break;
    case Value::Type::kList: {
      const ListData& l = obj.as_list();
      const bool subscriptable =
          l.kind == ListData::Kind::kList || l.kind == ListData::Kind::kTuple || l.kind == ListData::Kind::kRange;
      if (subscriptable && key.is_integral()) {
        const int64_t i = sequence_index(key, static_cast<int64_t>(l.items.size()));
        if (i >= 0) return l.items[static_cast<size_t>(i)];
      }
      break;
    }
    case Value::Type::kDict: {
      const Value* v = nullptr;
      try {
        v = obj.as_dict().find(key);
      } catch (const Failure&) {  // unhashable key: jinja2 catches the TypeError
        v = nullptr;
      }
      if (v) return *v;
      break;
    }
    case Value::Type::kObject:
      if (key.is_string()) return obj.as_object()->attr(key.as_string());
      break;
    default:
      break;
  }
  if (key.is_string()) {
    if (auto m = method_attr(obj, key.as_string())) return *m;
    if (auto n = number_attr(obj, key.as_string())) return *n;
  }
  return missing_element(obj, key);
}

Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  if (obj.is_undefined()) fail_undefined(obj);
  auto bound_ok = [](const Value& v) { return v.is_none() || v.is_integral(); };
  if (!bound_ok(start) || !bound_ok(stop) || !bound_ok(step)) {
    return Value::undefined(object_type_repr(obj) + " has no element slice(" + to_repr(start) + ", " + to_repr(stop) +
                            ", " + to_repr(step) + ")");
  }
  const int64_t st = step.is_none() ? 1 : step.as_int();
  if (st == 0) fail("slice step cannot be zero");
  std::vector<char32_t> cps;
  const std::vector<Value>* items = nullptr;
  int64_t n = 0;
  if (obj.is_string()) {
    cps = code_points(obj.as_string());
    n = static_cast<int64_t>(cps.size());
  } else if (obj.is_list() &&
             (obj.as_list().kind == ListData::Kind::kList || obj.as_list().kind == ListData::Kind::kTuple ||
              obj.as_list().kind == ListData::Kind::kRange)) {
    items = &obj.as_list().items;
    n = static_cast<int64_t>(items->size());
  } else {
    return Value::undefined(object_type_repr(obj) + " has no element slice(" + to_repr(start) + ", " + to_repr(stop) +
                            ", " + to_repr(step) + ")");
  }
  // PySlice_AdjustIndices.
  auto adjust = [&](const Value& v, bool is_start) -> int64_t {
    if (v.is_none()) {
      if (st > 0) return is_start ? 0 : n;
      return is_start ? n - 1 : -1;
    }
    int64_t i = v.as_int();
    if (i < 0) {
      i += n;
      if (i < 0) i = st < 0 ? -1 : 0;
    } else if (i >= n) {
      i = st < 0 ? n - 1 : n;
    }
    return i;
  };
  const int64_t a = adjust(start, true);
  const int64_t b = adjust(stop, false);
  std::vector<int64_t> picks;
  for (int64_t i = a; st > 0 ? i < b : i > b; i += st) picks.push_back(i);
  if (obj.is_string()) {
    std::string out;
    for (int64_t i : picks) unicode::append_utf8(out, cps[static_cast<size_t>(i)]);
    return obj.is_markup() ? Value::markup(std::move(out)) : Value::string(std::move(out));
  }
  std::vector<Value> out;
  for (int64_t i : picks) out.push_back((*items)[static_cast<size_t>(i)]);
  const ListData::Kind kind =
      obj.as_list().kind == ListData::Kind::kTuple ? ListData::Kind::kTuple : ListData::Kind::kList;
  if (obj.as_list().kind == ListData::Kind::kRange) {
    fail_unsupported("slicing a range() (Python returns another range)");
  }
  return Value::list(std::move(out), kind);
}

}  // namespace palign::runtime::jinja
