// Tokenizer: loads tokenizer.json (and tokenizer_config.json in from_dir) and runs the HF pipeline: added tokens
// on the raw text, then per segment normalizer -> normalized added tokens -> pre-tokenizer -> BPE; decoding runs the
// token strings (added tokens as their content) through the decoder chain. Components live in tokenizer_*.cpp.
#include "palign/runtime/tokenizer.h"

#include <fstream>
#include <sstream>

#include "palign/base/error.h"
#include "tokenizer_internal.h"
#include "unicode.h"

namespace palign::runtime {

namespace {

using tok::Json;

Json read_json(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  PALIGN_CHECK(in.good(), ErrorCode::kNotFound, "[runtime.Tokenizer] cannot open ", path.string(),
               "; check that the file exists and is readable");
  std::stringstream buffer;
  buffer << in.rdbuf();
  try {
    return Json::parse(buffer.str());
  } catch (const Json::exception& e) {
    PALIGN_THROW(ErrorCode::kInvalidArgument, "[runtime.Tokenizer] malformed JSON in ", path.string(), ": ",
                 e.what(), "; re-save the file with a JSON tool or re-download it");
  }
}

// tokenizer_config.json writes special tokens as "text" or {"content": "text", ...}.
std::string config_token(const Json& config, const char* key) {
  if (!config.contains(key)) return {};
  const Json& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object()) return tok::json_string(v, "content");
  return {};
}

std::unique_ptr<TokenizerImpl> load_impl(const std::filesystem::path& path) {
  PALIGN_CHECK(std::filesystem::is_regular_file(path), ErrorCode::kNotFound, "[runtime.Tokenizer] no file ",
               path.string(), "; pass the path of a Hugging Face tokenizer.json");
  const Json j = read_json(path);
  const std::string where = path.string();
  PALIGN_CHECK(j.is_object(), ErrorCode::kInvalidArgument, "[runtime.Tokenizer] ", where,
               " must hold a JSON object (a Hugging Face tokenizer.json)");
  auto impl = std::make_unique<TokenizerImpl>();
  impl->path = where;

  PALIGN_CHECK(j.contains("model") && j["model"].is_object(), ErrorCode::kInvalidArgument, "[runtime.Tokenizer] ",
               where, " has no \"model\" object; is it a tokenizer.json?");
  const Json& model = j["model"];
  std::string model_type = tok::json_string(model, "type");
  if (model_type.empty() && model.contains("merges")) model_type = "BPE";  // HF accepts untagged BPE models
  PALIGN_CHECK(model_type == "BPE", ErrorCode::kUnsupported, "[runtime.Tokenizer] unsupported model type \"",
               model_type, "\" in ", where, "; palign implements BPE models only");
  impl->model = std::make_unique<tok::BpeModel>(model, where);

  impl->normalizer = tok::make_normalizer(j.value("normalizer", Json()), where);
  impl->pre_tokenizer = tok::make_pre_tokenizer(j.value("pre_tokenizer", Json()), where);
  impl->post_processor = tok::make_post_processor(j.value("post_processor", Json()), impl->model->vocab(), where);
  impl->decoder = tok::make_decoder(j.value("decoder", Json()), where);

  int32_t vocab_size = static_cast<int32_t>(impl->model->vocab_r().size());
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const Json& t : j["added_tokens"]) {
      PALIGN_CHECK(t.is_object() && t.contains("id") && t["id"].is_number_integer() && t["id"].get<int64_t>() >= 0 &&
                       t["id"].get<int64_t>() <= tok::kMaxTokenId && t.contains("content") && t["content"].is_string(),
                   ErrorCode::kInvalidArgument, "[runtime.Tokenizer] added token ", t.dump(), " in ", where,
                   " needs an integer \"id\" from 0 to ", tok::kMaxTokenId, " and a string \"content\"");
      AddedToken token;
      token.id = t["id"].get<int32_t>();
      token.content = t["content"].get<std::string>();
      token.single_word = tok::json_bool(t, "single_word", false);
      token.lstrip = tok::json_bool(t, "lstrip", false);
      token.rstrip = tok::json_bool(t, "rstrip", false);
      token.special = tok::json_bool(t, "special", false);
      token.normalized = tok::json_bool(t, "normalized", !token.special);
      token.decoded = token.content;
      impl->added_tokens.push_back(std::move(token));
      vocab_size = std::max(vocab_size, impl->added_tokens.back().id + 1);
    }
  }
  for (size_t i = 0; i < impl->added_tokens.size(); ++i) {
    AddedToken& token = impl->added_tokens[i];
    impl->added_by_id[token.id] = i;
    impl->added_by_content.emplace(token.content, token.id);
    if (token.normalized && impl->normalizer) {
      // HF keeps a normalized added token in its normalized form: it is matched, listed and decoded that way.
      std::string normalized = impl->normalizer->normalize(token.content);
      impl->added_by_content.emplace(normalized, token.id);
      token.decoded = normalized;
      impl->normalized_matcher.add(std::move(normalized), &token);
    } else if (token.normalized) {
      impl->normalized_matcher.add(token.content, &token);
    } else {
      impl->raw_matcher.add(token.content, &token);
    }
  }
  impl->vocab_size = vocab_size;

  // Guesses for files without tokenizer_config.json. BOS: the first special token of the post-processor's single
  // template. EOS: the first of these names present in the vocabulary, in this order (chat end markers first, so
  // that Qwen's <|im_end|> wins over <|endoftext|>, as in its generation config).
  if (impl->post_processor) impl->bos_id = impl->post_processor->leading_id();
  for (const char* name : {"<|eot_id|>", "<|im_end|>", "<|endoftext|>", "<|end_of_text|>", "</s>"}) {
    auto it = impl->added_by_content.find(std::string_view(name));
    if (it != impl->added_by_content.end()) {
      impl->eos_id = it->second;
      break;
    }
    auto model_it = impl->model->vocab().find(std::string_view(name));
    if (model_it != impl->model->vocab().end()) {
      impl->eos_id = model_it->second;
      break;
    }
  }
  return impl;
}

void check_utf8(std::string_view text) {
  if (auto bad = unicode::find_invalid_utf8(text)) {
    PALIGN_THROW(ErrorCode::kInvalidArgument, "[runtime.Tokenizer.encode] text is not valid UTF-8 (byte ", *bad,
                 " of ", text.size(), "); convert it to UTF-8 before encoding");
  }
}

}  // namespace

void TokenizerImpl::encode(std::string_view text, std::vector<int32_t>& ids, std::vector<std::string>* tokens) const {
  check_utf8(text);
  std::vector<tok::Piece> pieces;
  auto run_model = [&](std::string piece_text, bool at_start) {
    pieces.clear();
    pieces.push_back({std::move(piece_text), at_start});
    if (pre_tokenizer) pre_tokenizer->pre_tokenize(pieces);
    for (const tok::Piece& piece : pieces) {
      if (piece.text.empty()) continue;
      const size_t first = ids.size();
      model->tokenize(piece.text, ids);
      if (tokens) {
        for (size_t i = first; i < ids.size(); ++i) tokens->push_back(model->vocab_r()[ids[i]]);
      }
    }
  };
  // HF's Encoding.tokens holds the matched text for an added token: with lstrip/rstrip it includes the stripped
  // whitespace, and for a normalized token it is the normalized text.
  auto emit_added = [&](const AddedToken& token, std::string_view matched) {
    ids.push_back(token.id);
    if (tokens) tokens->emplace_back(matched);
  };
  const std::vector<AddedTokenMatcher::Segment> segments =
      raw_matcher.empty() ? std::vector<AddedTokenMatcher::Segment>{{0, text.size(), nullptr}} : raw_matcher.split(text);
  for (const auto& segment : segments) {
    if (segment.end <= segment.begin) continue;
    if (segment.token) {
      emit_added(*segment.token, text.substr(segment.begin, segment.end - segment.begin));
      continue;
    }
    const std::string_view raw = text.substr(segment.begin, segment.end - segment.begin);
    const std::string normalized = normalizer ? normalizer->normalize(raw) : std::string(raw);
    const bool at_start = segment.begin == 0;
    if (normalized_matcher.empty()) {
      if (!normalized.empty()) run_model(normalized, at_start);
      continue;
    }
    for (const auto& sub : normalized_matcher.split(normalized)) {
      if (sub.end <= sub.begin) continue;
      if (sub.token) {
        emit_added(*sub.token, std::string_view(normalized).substr(sub.begin, sub.end - sub.begin));
      } else {
        run_model(normalized.substr(sub.begin, sub.end - sub.begin), at_start && sub.begin == 0);
      }
    }
  }
}

std::string TokenizerImpl::token_string(int32_t id) const {
  if (auto it = added_by_id.find(id); it != added_by_id.end()) return added_tokens[it->second].decoded;
  const auto& vocab_r = model->vocab_r();
  PALIGN_CHECK(id >= 0 && static_cast<size_t>(id) < vocab_r.size() && !vocab_r[id].empty(),
               ErrorCode::kInvalidArgument, "[runtime.Tokenizer.decode] token id ", id,
               " is not in the vocabulary (vocab_size ", vocab_size, ") of ", path,
               "; ids must come from this tokenizer");
  return vocab_r[id];
}

Tokenizer::Tokenizer(std::unique_ptr<TokenizerImpl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_file(const std::filesystem::path& tokenizer_json) {
  return Tokenizer(load_impl(tokenizer_json));
}

Tokenizer Tokenizer::from_dir(const std::filesystem::path& dir) {
  const auto json_path = dir / "tokenizer.json";
  PALIGN_CHECK(std::filesystem::is_regular_file(json_path), ErrorCode::kNotFound,
               "[runtime.Tokenizer] no tokenizer.json in ", dir.string(),
               "; point at a Hugging Face model directory that contains one");
  auto impl = load_impl(json_path);
  const auto config_path = dir / "tokenizer_config.json";
  if (std::filesystem::is_regular_file(config_path)) {
    const Json config = read_json(config_path);
    if (config.is_object()) {
      auto lookup = [&](const char* key, std::optional<int32_t>& slot) {
        const std::string name = config_token(config, key);
        if (name.empty()) return;
        if (auto it = impl->added_by_content.find(name); it != impl->added_by_content.end()) {
          slot = it->second;
        } else if (auto model_it = impl->model->vocab().find(name); model_it != impl->model->vocab().end()) {
          slot = model_it->second;
        }
      };
      lookup("bos_token", impl->bos_id);
      lookup("eos_token", impl->eos_id);
      lookup("pad_token", impl->pad_id);
      if (config.contains("chat_template")) {
        const Json& ct = config["chat_template"];
        if (ct.is_string()) {
          impl->chat_template = ct.get<std::string>();
        } else if (ct.is_array()) {
          for (const Json& entry : ct) {
            if (tok::json_string(entry, "name") == "default") impl->chat_template = tok::json_string(entry, "template");
          }
        }
      }
    }
  }
  return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special) const {
  std::vector<int32_t> ids;
  impl_->encode(text, ids, nullptr);
  if (add_special && impl_->post_processor) impl_->post_processor->process(ids);
  return ids;
}

std::vector<std::string> Tokenizer::encode_tokens(std::string_view text) const {
  std::vector<int32_t> ids;
  std::vector<std::string> tokens;
  impl_->encode(text, ids, &tokens);
  return tokens;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (skip_special && is_special(id)) continue;
    tokens.push_back(impl_->token_string(id));
  }
  if (!impl_->decoder) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) out.push_back(' ');
      out.append(tokens[i]);
    }
    return out;
  }
  impl_->decoder->decode_chain(tokens);
  std::string out;
  for (const std::string& t : tokens) out.append(t);
  return out;
}

int32_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (auto it = impl_->added_by_content.find(token); it != impl_->added_by_content.end()) return it->second;
  if (auto it = impl_->model->vocab().find(token); it != impl_->model->vocab().end()) return it->second;
  return std::nullopt;
}

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  if (auto it = impl_->added_by_id.find(id); it != impl_->added_by_id.end()) {
    return impl_->added_tokens[it->second].decoded;
  }
  const auto& vocab_r = impl_->model->vocab_r();
  if (id < 0 || static_cast<size_t>(id) >= vocab_r.size() || vocab_r[id].empty()) return std::nullopt;
  return vocab_r[id];
}

bool Tokenizer::is_special(int32_t id) const {
  auto it = impl_->added_by_id.find(id);
  return it != impl_->added_by_id.end() && impl_->added_tokens[it->second].special;
}

std::optional<int32_t> Tokenizer::bos_id() const { return impl_->bos_id; }
std::optional<int32_t> Tokenizer::eos_id() const { return impl_->eos_id; }
std::optional<int32_t> Tokenizer::pad_id() const { return impl_->pad_id; }
const std::string& Tokenizer::chat_template_source() const { return impl_->chat_template; }

}  // namespace palign::runtime
