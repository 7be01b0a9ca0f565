// json.dumps and json.loads for the Jinja interpreter (jinja_internal.h): transformers' tojson filter is
// json.dumps(x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys), whose output this
// reproduces byte for byte (separators ", " / ": ", or "," with an indent; floats as Python's repr; NaN and
// Infinity; non-str keys converted). from_json turns the render context into values, keeping object key order.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>

#include "jinja_internal.h"
#include "unicode.h"

namespace palign::runtime::jinja {

namespace {

void json_string(std::string& out, std::string_view s, bool ensure_ascii) {
  out.push_back('"');
  char buf[16];
  for (size_t pos = 0; pos < s.size();) {
    const char32_t cp = unicode::next_code_point(s, pos);
    switch (cp) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      default:
        break;
    }
    if (cp < 0x20 || (ensure_ascii && cp >= 0x7f)) {
      if (cp >= 0x10000) {
        const char32_t v = cp - 0x10000;
        std::snprintf(buf, sizeof(buf), "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 | (v >> 10)),
                      static_cast<unsigned>(0xDC00 | (v & 0x3FF)));
      } else {
        std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(cp));
      }
      out += buf;
    } else {
      unicode::append_utf8(out, cp);
    }
  }
  out.push_back('"');
}

std::string json_float(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  return float_repr(d);
}

void json_value(std::string& out, const Value& v, const JsonOptions& o, int level) {
  auto newline = [&](int lvl) {
    out.push_back('\n');
    for (int i = 0; i < lvl; ++i) out += *o.indent;
  };
  switch (v.type()) {
    case Value::Type::kNone:
      out += "null";
      return;
    case Value::Type::kBool:
      out += v.as_bool() ? "true" : "false";
      return;
    case Value::Type::kInt:
      out += std::to_string(v.as_int());
      return;
    case Value::Type::kFloat:
      out += json_float(v.as_double());
      return;
    case Value::Type::kString:
      json_string(out, v.as_string(), o.ensure_ascii);
      return;
    case Value::Type::kList: {
      const ListData& l = v.as_list();
      if (l.kind != ListData::Kind::kList && l.kind != ListData::Kind::kTuple) break;
      if (l.items.empty()) {
        out += "[]";
        return;
      }
      out.push_back('[');
      for (size_t i = 0; i < l.items.size(); ++i) {
        if (i) out += o.item_separator;
        if (o.indent) newline(level + 1);
        json_value(out, l.items[i], o, level + 1);
      }
      if (o.indent) newline(level);
      out.push_back(']');
      return;
    }
    case Value::Type::kDict: {
      std::vector<const std::pair<Value, Value>*> items;
      for (const auto& item : v.as_dict().items) items.push_back(&item);
      if (items.empty()) {
        out += "{}";
        return;
      }
      if (o.sort_keys) {
        std::stable_sort(items.begin(), items.end(),
                         [](const auto* x, const auto* y) { return less(x->first, y->first); });
      }
      out.push_back('{');
      for (size_t i = 0; i < items.size(); ++i) {
        const Value& key = items[i]->first;
        if (i) out += o.item_separator;
        if (o.indent) newline(level + 1);
        std::string key_text;
        if (key.is_string()) {
          key_text = key.as_string();
        } else if (key.is_float()) {
          key_text = json_float(key.as_double());
        } else if (key.is_bool()) {
          key_text = key.as_bool() ? "true" : "false";
        } else if (key.is_int()) {
          key_text = std::to_string(key.as_int());
        } else if (key.is_none()) {
          key_text = "null";
        } else {
          fail("keys must be str, int, float, bool or None, not " + type_name(key));
        }
        json_string(out, key_text, o.ensure_ascii);
        out += o.key_separator;
        json_value(out, items[i]->second, o, level + 1);
      }
      if (o.indent) newline(level);
      out.push_back('}');
      return;
    }
    default:
      break;
  }
  fail("Object of type " + type_name(v) + " is not JSON serializable");
}

}  // namespace

std::string to_json(const Value& v, const JsonOptions& options) {
  std::string out;
  json_value(out, v, options, 0);
  return out;
}

Value from_json(const void* ordered_json) {
  const auto& j = *static_cast<const nlohmann::ordered_json*>(ordered_json);
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
      return Value::none();
    case nlohmann::ordered_json::value_t::boolean:
      return Value::boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return Value::integer(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        fail_unsupported("the JSON integer " + std::to_string(u) + ", beyond 64 bits,");
      }
      return Value::integer(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float:
      return Value::number(j.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return Value::string(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      for (const auto& item : j) items.push_back(from_json(&item));
      return Value::list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      DictData d;
      for (const auto& [key, item] : j.items()) d.items.emplace_back(Value::string(key), from_json(&item));
      return Value::dict(std::move(d));
    }
    default:
      break;
  }
  fail_unsupported("binary JSON values");
}

}  // namespace palign::runtime::jinja
