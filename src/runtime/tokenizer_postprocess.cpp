// Post-processors of tokenizer.json (HF tokenizers' processors module) for single sequences: TemplateProcessing,
// ByteLevel (no change to ids), BertProcessing ([CLS] A [SEP]), RobertaProcessing (<s> A </s>) and Sequence.
// Pair templates are not used by palign.
#include "palign/base/error.h"
#include "tokenizer_internal.h"

namespace palign::runtime::tok {

namespace {

// One template item: a run of special-token ids, or the sequence itself (ids empty, is_sequence set).
struct TemplateItem {
  bool is_sequence = false;
  std::vector<int32_t> ids;
};

class TemplatePostProcessor final : public PostProcessor {
 public:
  explicit TemplatePostProcessor(std::vector<TemplateItem> items) : items_(std::move(items)) {}
  void process(std::vector<int32_t>& ids) const override {
    std::vector<int32_t> out;
    out.reserve(ids.size() + items_.size());
    for (const TemplateItem& item : items_) {
      if (item.is_sequence) {
        out.insert(out.end(), ids.begin(), ids.end());
      } else {
        out.insert(out.end(), item.ids.begin(), item.ids.end());
      }
    }
    ids = std::move(out);
  }
  std::optional<int32_t> leading_id() const override {
    if (!items_.empty() && !items_[0].is_sequence && !items_[0].ids.empty()) return items_[0].ids[0];
    return std::nullopt;
  }

 private:
  std::vector<TemplateItem> items_;
};

class IdentityPostProcessor final : public PostProcessor {
 public:
  void process(std::vector<int32_t>& ids) const override { (void)ids; }
};

class SequencePostProcessor final : public PostProcessor {
 public:
  explicit SequencePostProcessor(std::vector<std::unique_ptr<PostProcessor>> steps) : steps_(std::move(steps)) {}
  void process(std::vector<int32_t>& ids) const override {
    for (const auto& step : steps_) step->process(ids);
  }
  std::optional<int32_t> leading_id() const override {
    std::optional<int32_t> id;
    for (const auto& step : steps_) {
      if (auto lead = step->leading_id()) id = lead;
    }
    return id;
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

std::vector<int32_t> special_ids(const Json& specials, const std::string& name, std::string_view where) {
  PALIGN_CHECK(specials.is_object() && specials.contains(name) && specials[name].contains("ids") &&
                   specials[name]["ids"].is_array(),
               ErrorCode::kInvalidArgument, "[runtime.Tokenizer] TemplateProcessing in ", where,
               " uses special token \"", name, "\" that is missing from its special_tokens");
  std::vector<int32_t> ids;
  for (const Json& id : specials[name]["ids"]) ids.push_back(id.get<int32_t>());
  return ids;
}

std::unique_ptr<PostProcessor> make_template(const Json& j, std::string_view where) {
  const Json specials = j.contains("special_tokens") ? j["special_tokens"] : Json::object();
  const Json& single = j.contains("single") ? j["single"] : Json();
  std::vector<TemplateItem> items;
  if (single.is_string()) {  // the "<s> $A" shorthand
    const std::string s = single.get<std::string>();
    size_t pos = 0;
    while (pos < s.size()) {
      size_t end = s.find(' ', pos);
      if (end == std::string::npos) end = s.size();
      std::string piece = s.substr(pos, end - pos);
      pos = end + 1;
      if (piece.empty()) continue;
      if (piece[0] == '$') {
        items.push_back({true, {}});
      } else {
        const size_t colon = piece.rfind(':');
        if (colon != std::string::npos) piece.resize(colon);
        items.push_back({false, special_ids(specials, piece, where)});
      }
    }
  } else {
    PALIGN_CHECK(single.is_array(), ErrorCode::kInvalidArgument, "[runtime.Tokenizer] TemplateProcessing in ",
                 where, " needs a \"single\" template");
    for (const Json& item : single) {
      if (item.contains("Sequence")) {
        items.push_back({true, {}});
      } else if (item.contains("SpecialToken")) {
        items.push_back({false, special_ids(specials, json_string(item["SpecialToken"], "id"), where)});
      } else {
        PALIGN_THROW(ErrorCode::kInvalidArgument, "[runtime.Tokenizer] TemplateProcessing item ", item.dump(),
                     " in ", where, " must be {\"Sequence\": ...} or {\"SpecialToken\": ...}");
      }
    }
  }
  return std::make_unique<TemplatePostProcessor>(std::move(items));
}

// Bert / Roberta: "cls": [token, id], "sep": [token, id].
int32_t pair_id(const Json& j, const char* key, std::string_view where) {
  PALIGN_CHECK(j.contains(key) && j[key].is_array() && j[key].size() == 2 && j[key][1].is_number_integer(),
               ErrorCode::kInvalidArgument, "[runtime.Tokenizer] post_processor field \"", key, "\" in ", where,
               " must be [token, id]");
  return j[key][1].get<int32_t>();
}

}  // namespace

std::unique_ptr<PostProcessor> make_post_processor(const Json& j, const Vocab& vocab, std::string_view where) {
  (void)vocab;
  if (j.is_null()) return nullptr;
  const std::string type = json_string(j, "type");
  if (type == "TemplateProcessing") return make_template(j, where);
  if (type == "ByteLevel") return std::make_unique<IdentityPostProcessor>();
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    const int32_t cls = pair_id(j, "cls", where);
    const int32_t sep = pair_id(j, "sep", where);
    return std::make_unique<TemplatePostProcessor>(
        std::vector<TemplateItem>{{false, {cls}}, {true, {}}, {false, {sep}}});
  }
  if (type == "Sequence") {
    const Json& list = j.contains("processors") ? j["processors"] : Json::array();
    PALIGN_CHECK(list.is_array(), ErrorCode::kInvalidArgument, "[runtime.Tokenizer] Sequence post_processor in ",
                 where, " needs a \"processors\" array");
    std::vector<std::unique_ptr<PostProcessor>> steps;
    for (const Json& item : list) {
      if (auto step = make_post_processor(item, vocab, where)) steps.push_back(std::move(step));
    }
    return std::make_unique<SequencePostProcessor>(std::move(steps));
  }
  PALIGN_THROW(ErrorCode::kUnsupported, "[runtime.Tokenizer] unsupported post_processor type \"", type, "\" in ",
               where, "; palign implements TemplateProcessing, ByteLevel, BertProcessing, RobertaProcessing, "
               "Sequence");
}

}  // namespace palign::runtime::tok
