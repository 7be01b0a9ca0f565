// StrategyOptions from JSON: the server's `palign` object and the CLI's --options.
#include "palign/decoding/strategy_options.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "palign/base/error.h"
#include "palign/base/strings.h"

namespace palign::decoding {

StrategyOptions StrategyOptions::from_json(std::string_view json_text, std::vector<std::string>* given) {
  const nlohmann::json j = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  PALIGN_CHECK(!j.is_discarded(), ErrorCode::kInvalidArgument, "[decoding.options] the options are not valid JSON");
  PALIGN_CHECK(j.is_object(), ErrorCode::kInvalidArgument,
               "[decoding.options] the options must be a JSON object of name: value, got ", j.type_name());
  StrategyOptions o;
  std::vector<std::string> names;
  o.visit_fields([&](const char* name, auto&, const char*, const char*) { names.emplace_back(name); });
  for (const auto& item : j.items()) {
    const std::string& key = item.key();  // not a structured binding: clang 14's lambdas cannot capture one
    const nlohmann::json& value = item.value();
    std::string name = key;
    std::replace(name.begin(), name.end(), '_', '-');
    bool found = false;
    o.visit_fields([&](const char* field, auto& target, const char*, const char*) {
      if (name != field) return;
      found = true;
      using T = std::decay_t<decltype(target)>;
      if constexpr (std::is_same_v<T, std::string>) {
        PALIGN_CHECK(value.is_string(), ErrorCode::kInvalidArgument, "[decoding.options] \"", key,
                     "\" must be a string, got ", value.type_name());
        target = value.template get<std::string>();
      } else if constexpr (std::is_integral_v<T>) {
        PALIGN_CHECK(value.is_number_integer(), ErrorCode::kInvalidArgument, "[decoding.options] \"", key,
                     "\" must be an integer, got ", value.dump());
        target = value.template get<T>();
      } else {
        PALIGN_CHECK(value.is_number() && std::isfinite(value.template get<double>()), ErrorCode::kInvalidArgument,
                     "[decoding.options] \"", key, "\" must be a finite number, got ", value.dump());
        target = value.template get<T>();
      }
    });
    PALIGN_CHECK(found, ErrorCode::kInvalidArgument, "[decoding.options] unknown option \"", key,
                 "\" (they are: ", join_list(names), ")");
    if (given) given->push_back(name);
  }
  return o;
}

}  // namespace palign::decoding
