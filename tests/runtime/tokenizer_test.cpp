// Tokenizer tests: every case of the HF golden fixtures (ids, tokens, ids_with_special, decoded; exact match),
// round trips, hand-made micro tokenizers (both merge forms, byte fallback, unk fusing, added-token flags,
// normalizers / pre-tokenizers / decoders), from_utf8_lossy on invalid bytes, every error path, and a throughput
// print (no timing assertion).
#include "palign/runtime/tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "palign/base/error.h"

#include "test_util.h"
#include "temp_dir.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using palign::ErrorCode;
using palign::runtime::Tokenizer;

const fs::path kDataDir = PALIGN_TEST_DATA_DIR;
const std::vector<std::string> kFixtureTokenizers = {"gpt2_bpe", "llama3_bpe", "qwen2_bpe", "llama2_spm_bpe"};

json read_json(const fs::path& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return json::parse(in);
}

using palign::test::TempDir;

std::string ids_str(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += std::to_string(id) + " ";
  return s;
}

// Compares one tokenizer with its encodings.json; returns the number of fully matching cases.
int check_fixture(const Tokenizer& tok, const json& cases, const std::string& name) {
  int matched = 0;
  for (const json& c : cases) {
    const std::string text = c["text"];
    const auto ids = tok.encode(text, false);
    const auto tokens = tok.encode_tokens(text);
    const auto with_special = tok.encode(text, true);
    const auto expected_ids = c["ids"].get<std::vector<int32_t>>();
    const std::string decoded = tok.decode(expected_ids, false);
    bool ok = true;
    if (ids != expected_ids) {
      ADD_FAILURE() << name << " ids for \"" << text << "\": got " << ids_str(ids) << " want " << ids_str(expected_ids);
      ok = false;
    }
    if (tokens != c["tokens"].get<std::vector<std::string>>()) {
      std::string got_tokens, want_tokens;
      for (const auto& t : tokens) got_tokens += t + "|";
      for (const auto& t : c["tokens"]) want_tokens += t.get<std::string>() + "|";
      ADD_FAILURE() << name << " tokens for \"" << text << "\": got " << got_tokens << " want " << want_tokens;
      ok = false;
    }
    if (with_special != c["ids_with_special"].get<std::vector<int32_t>>()) {
      ADD_FAILURE() << name << " ids_with_special for \"" << text << "\": got " << ids_str(with_special);
      ok = false;
    }
    if (decoded != c["decoded"].get<std::string>()) {
      ADD_FAILURE() << name << " decoded for \"" << text << "\": got \"" << decoded << "\"";
      ok = false;
    }
    matched += ok ? 1 : 0;
  }
  return matched;
}

TEST(TokenizerFixture, EveryCaseOfEveryFixtureTokenizerMatchesHf) {
  for (const std::string& name : kFixtureTokenizers) {
    const fs::path dir = kDataDir / "hf" / "tokenizers" / name;
    const Tokenizer tok = Tokenizer::from_file(dir / "tokenizer.json");
    const json enc = read_json(dir / "encodings.json");
    EXPECT_EQ(tok.vocab_size(), enc["vocab_size"].get<int32_t>()) << name;
    const int matched = check_fixture(tok, enc["cases"], name);
    std::printf("%-16s %d/%zu cases match (ids, tokens, ids_with_special, decoded)\n", name.c_str(), matched,
                enc["cases"].size());
    EXPECT_EQ(matched, static_cast<int>(enc["cases"].size()));
  }
}

// More HF dumps in the same format (DIR/<name>/{tokenizer.json,encodings.json}, with "decodes": [{ids, text,
// text_skip}] as well): tests/data/hf_extra holds the fixture tokenizers with other components (added-token flags,
// normalized added tokens, normalizer sequences, Metaspace, Split behaviors); PALIGN_TOKENIZER_EXTRA_FIXTURES=DIR
// checks another set instead.
TEST(TokenizerFixture, ExtraHfDumps) {
  const char* env = std::getenv("PALIGN_TOKENIZER_EXTRA_FIXTURES");
  const fs::path root = env != nullptr ? fs::path(env) : kDataDir / "hf_extra";
  std::vector<fs::path> dirs;
  for (const auto& entry : fs::directory_iterator(root)) {
    if (fs::exists(entry.path() / "encodings.json")) dirs.push_back(entry.path());
  }
  std::sort(dirs.begin(), dirs.end());
  for (const fs::path& dir : dirs) {
    const std::string name = dir.filename().string();
    const Tokenizer tok = Tokenizer::from_file(dir / "tokenizer.json");
    const json enc = read_json(dir / "encodings.json");
    const int matched = check_fixture(tok, enc["cases"], name);
    int decodes = 0;
    const json& list = enc.contains("decodes") ? enc["decodes"] : json::array();
    for (const json& d : list) {
      const auto ids = d["ids"].get<std::vector<int32_t>>();
      const bool ok = tok.decode(ids, false) == d["text"].get<std::string>() &&
                      tok.decode(ids, true) == d["text_skip"].get<std::string>();
      EXPECT_TRUE(ok) << name << " decode of " << ids_str(ids) << ": got \"" << tok.decode(ids, false) << "\" want \""
                      << d["text"].get<std::string>() << "\"";
      decodes += ok ? 1 : 0;
    }
    std::printf("%-50s %d/%zu cases, %d/%zu decodes match\n", name.c_str(), matched, enc["cases"].size(), decodes,
                list.size());
    EXPECT_EQ(matched, static_cast<int>(enc["cases"].size())) << name;
  }
}

TEST(TokenizerFixture, ModelDirectoryTokenizersMatchTheirFixtures) {
  const std::map<std::string, std::string> source = {
      {"gpt2", "gpt2_bpe"},   {"llama", "llama3_bpe"},          {"llama_rm", "llama3_bpe"},
      {"llama_rm_multi", "llama3_bpe"}, {"llama_untied_noscale", "llama3_bpe"}, {"mistral", "llama2_spm_bpe"},
      {"qwen2", "qwen2_bpe"}, {"qwen3", "qwen2_bpe"}};
  for (const auto& entry : fs::directory_iterator(kDataDir / "hf" / "models")) {
    const std::string model = entry.path().filename().string();
    if (!fs::exists(entry.path() / "tokenizer.json")) continue;
    const Tokenizer tok = Tokenizer::from_dir(entry.path());
    auto it = source.find(model);
    if (it == source.end()) {
      std::printf("%-22s loaded (vocab %d), no fixture to compare\n", model.c_str(), tok.vocab_size());
      continue;
    }
    const json enc = read_json(kDataDir / "hf" / "tokenizers" / it->second / "encodings.json");
    const int matched = check_fixture(tok, enc["cases"], model);
    std::printf("%-22s %d/%zu cases match %s\n", model.c_str(), matched, enc["cases"].size(), it->second.c_str());
    EXPECT_EQ(matched, static_cast<int>(enc["cases"].size()));
    const json config = read_json(entry.path() / "config.json");
    if (config.contains("eos_token_id") && config["eos_token_id"].is_number_integer() && model != "gpt2") {
      EXPECT_EQ(tok.eos_id(), config["eos_token_id"].get<int32_t>()) << model << " eos guess";
    }
  }
}

TEST(TokenizerFixture, DecodeOfEncodeRoundTrips) {
  for (const std::string& name : kFixtureTokenizers) {
    const fs::path dir = kDataDir / "hf" / "tokenizers" / name;
    const Tokenizer tok = Tokenizer::from_file(dir / "tokenizer.json");
    const json enc = read_json(dir / "encodings.json");
    int same = 0;
    for (const json& c : enc["cases"]) {
      const std::string text = c["text"];
      const std::string back = tok.decode(tok.encode(text));
      // HF's own round trip is the fixture's "decoded"; it differs from the text only where the pipeline is lossy
      // (NFC in qwen2, the SentencePiece prefix space next to added tokens).
      EXPECT_EQ(back, c["decoded"].get<std::string>()) << name << " \"" << text << "\"";
      same += back == text ? 1 : 0;
    }
    std::printf("%-16s decode(encode(text)) == text for %d/%zu cases\n", name.c_str(), same, enc["cases"].size());
  }
}

TEST(TokenizerFixture, SpecialTokensAndIds) {
  const Tokenizer llama3 = Tokenizer::from_file(kDataDir / "hf/tokenizers/llama3_bpe/tokenizer.json");
  EXPECT_EQ(llama3.bos_id(), llama3.token_to_id("<|begin_of_text|>"));
  EXPECT_EQ(llama3.eos_id(), llama3.token_to_id("<|eot_id|>"));
  EXPECT_FALSE(llama3.pad_id().has_value());
  const int32_t eot = *llama3.token_to_id("<|eot_id|>");
  EXPECT_TRUE(llama3.is_special(eot));
  EXPECT_FALSE(llama3.is_special(*llama3.token_to_id("a")));
  EXPECT_EQ(llama3.id_to_token(eot), "<|eot_id|>");
  EXPECT_FALSE(llama3.id_to_token(llama3.vocab_size()).has_value());
  EXPECT_FALSE(llama3.id_to_token(-1).has_value());
  const auto ids = llama3.encode("<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>", true);
  EXPECT_EQ(ids.front(), *llama3.bos_id());
  EXPECT_EQ(llama3.decode(ids, /*skip_special=*/true), "user\n\nhi");
  EXPECT_EQ(llama3.decode(ids, false), "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>");

  const Tokenizer qwen = Tokenizer::from_file(kDataDir / "hf/tokenizers/qwen2_bpe/tokenizer.json");
  EXPECT_EQ(qwen.eos_id(), qwen.token_to_id("<|im_end|>"));
  EXPECT_FALSE(qwen.bos_id().has_value());
  const Tokenizer spm = Tokenizer::from_file(kDataDir / "hf/tokenizers/llama2_spm_bpe/tokenizer.json");
  EXPECT_EQ(spm.bos_id(), 1);
  EXPECT_EQ(spm.eos_id(), 2);
}

TEST(TokenizerConfig, FromDirReadsTokenizerConfig) {
  TempDir dir("config");
  fs::copy_file(kDataDir / "hf/tokenizers/qwen2_bpe/tokenizer.json", dir.path() / "tokenizer.json");
  dir.write("tokenizer_config.json", R"({"bos_token": null, "eos_token": {"content": "<|endoftext|>"},
    "pad_token": "<|im_start|>", "chat_template": [{"name": "tool_use", "template": "x"},
    {"name": "default", "template": "{{ '<|im_start|>' }}"}]})");
  const Tokenizer tok = Tokenizer::from_dir(dir.path());
  EXPECT_FALSE(tok.bos_id().has_value());
  EXPECT_EQ(tok.eos_id(), tok.token_to_id("<|endoftext|>"));
  EXPECT_EQ(tok.pad_id(), tok.token_to_id("<|im_start|>"));
  EXPECT_EQ(tok.chat_template_source(), "{{ '<|im_start|>' }}");

  dir.write("tokenizer_config.json", R"({"chat_template": "plain"})");
  EXPECT_EQ(Tokenizer::from_dir(dir.path()).chat_template_source(), "plain");
  EXPECT_TRUE(Tokenizer::from_file(dir.path() / "tokenizer.json").chat_template_source().empty());
}

// ---------------------------------------------------------------------------------------------- micro tokenizers

// A tokenizer.json with the given model and pipeline parts (null when absent).
json micro_tokenizer(json model, json added = json::array()) {
  return json{{"version", "1.0"},           {"truncation", nullptr}, {"padding", nullptr},
              {"added_tokens", added},      {"normalizer", nullptr}, {"pre_tokenizer", nullptr},
              {"post_processor", nullptr}, {"decoder", nullptr},     {"model", model}};
}

json bpe_model(json vocab, json merges) {
  return json{{"type", "BPE"},      {"dropout", nullptr},    {"unk_token", nullptr},
              {"fuse_unk", false},  {"byte_fallback", false}, {"ignore_merges", false},
              {"vocab", vocab},     {"merges", merges}};
}

Tokenizer load(const TempDir& dir, const json& j) {
  return Tokenizer::from_file(dir.write("tokenizer.json", j.dump()));
}

TEST(TokenizerMicro, MergesInStringAndListFormGiveTheSameResult) {
  TempDir dir("merges");
  const json vocab = {{"a", 0}, {"b", 1}, {"c", 2}, {"ab", 3}, {"bc", 4}, {"abc", 5}, {"ca", 6}};
  const Tokenizer strings = load(dir, micro_tokenizer(bpe_model(vocab, {"a b", "ab c", "c a"})));
  const Tokenizer lists =
      load(dir, micro_tokenizer(bpe_model(vocab, json::array({{"a", "b"}, {"ab", "c"}, {"c", "a"}}))));
  for (const Tokenizer* tok : {&strings, &lists}) {
    // "abcabc": a b -> ab (rank 0) at both places, then ab c -> abc; c a never forms because ab merged first.
    EXPECT_EQ(tok->encode("abcabc"), (std::vector<int32_t>{5, 5}));
    EXPECT_EQ(tok->encode("cab"), (std::vector<int32_t>{2, 3}));  // a b (rank 0) beats c a (rank 2)
    EXPECT_EQ(tok->encode("bca"), (std::vector<int32_t>{1, 6}));
    EXPECT_EQ(tok->encode_tokens("abca"), (std::vector<std::string>{"abc", "a"}));
    EXPECT_EQ(tok->decode(std::vector<int32_t>{5, 6}), "abc ca");  // no decoder: tokens joined by spaces
  }
  // Lowest rank wins; equal ranks resolve left to right: "aaa" with "a a" gives "aa a".
  const Tokenizer aaa = load(dir, micro_tokenizer(bpe_model({{"a", 0}, {"aa", 1}}, {"a a"})));
  EXPECT_EQ(aaa.encode("aaa"), (std::vector<int32_t>{1, 0}));
  EXPECT_EQ(aaa.encode("aaaa"), (std::vector<int32_t>{1, 1}));
}

TEST(TokenizerMicro, ByteFallbackUnkAndIgnoreMerges) {
  TempDir dir("fallback");
  json vocab = {{"<unk>", 0}, {"a", 1}, {"b", 2}, {"ab", 3}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    vocab[name] = 4 + b;
  }
  json model = bpe_model(vocab, {"a b"});
  model["unk_token"] = "<unk>";
  model["byte_fallback"] = true;
  json j = micro_tokenizer(model);
  j["decoder"] = {{"type", "Sequence"}, {"decoders", {{{"type", "ByteFallback"}}, {{"type", "Fuse"}}}}};
  const Tokenizer tok = load(dir, j);
  // "é" is not in the vocabulary: its two UTF-8 bytes C3 A9 become <0xC3> <0xA9>.
  EXPECT_EQ(tok.encode("ab\xC3\xA9"), (std::vector<int32_t>{3, 4 + 0xC3, 4 + 0xA9}));
  EXPECT_EQ(tok.encode_tokens("\xC3\xA9"), (std::vector<std::string>{"<0xC3>", "<0xA9>"}));
  EXPECT_EQ(tok.decode(tok.encode("ab\xC3\xA9")), "ab\xC3\xA9");
  // A byte run that is not valid UTF-8 gives one U+FFFD per byte, as HF's ByteFallback decoder.
  EXPECT_EQ(tok.decode(std::vector<int32_t>{4 + 0xC3, 1, 4 + 0xE2, 4 + 0x82}),
            "\xEF\xBF\xBD" "a" "\xEF\xBF\xBD\xEF\xBF\xBD");

  // Without byte fallback, unknown characters become <unk>, fused into one when fuse_unk.
  model["byte_fallback"] = false;
  model["fuse_unk"] = true;
  EXPECT_EQ(load(dir, micro_tokenizer(model)).encode("a\xC3\xA9\xC3\xA9" "b"), (std::vector<int32_t>{1, 0, 2}));
  model["fuse_unk"] = false;
  EXPECT_EQ(load(dir, micro_tokenizer(model)).encode("a\xC3\xA9\xC3\xA9" "b"), (std::vector<int32_t>{1, 0, 0, 2}));
  // No unk token at all: unknown characters are dropped.
  model["unk_token"] = nullptr;
  EXPECT_EQ(load(dir, micro_tokenizer(model)).encode("a\xC3\xA9" "b"), (std::vector<int32_t>{3}));

  // ignore_merges: a word that is in the vocabulary is one token even if merges would not produce it.
  json v2 = {{"a", 0}, {"b", 1}, {"c", 2}, {"bc", 3}, {"abc", 4}};
  json m2 = bpe_model(v2, {"b c"});
  EXPECT_EQ(load(dir, micro_tokenizer(m2)).encode("abc"), (std::vector<int32_t>{0, 3}));
  m2["ignore_merges"] = true;
  EXPECT_EQ(load(dir, micro_tokenizer(m2)).encode("abc"), (std::vector<int32_t>{4}));
}

TEST(TokenizerMicro, ContinuingSubwordPrefixAndEndOfWordSuffix) {
  TempDir dir("prefix");
  json model = bpe_model({{"a", 0}, {"##b", 1}, {"##c", 2}, {"ab", 3}, {"ab##c", 4}, {"abc", 5}}, {"a ##b", "ab ##c"});
  model["continuing_subword_prefix"] = "##";
  EXPECT_EQ(load(dir, micro_tokenizer(model)).encode("abc"), (std::vector<int32_t>{5}));
  json suffix = bpe_model({{"a", 0}, {"b</w>", 1}, {"ab</w>", 2}}, {"a b</w>"});
  suffix["end_of_word_suffix"] = "</w>";
  json j = micro_tokenizer(suffix);
  j["pre_tokenizer"] = {{"type", "WhitespaceSplit"}};
  j["decoder"] = {{"type", "BPEDecoder"}, {"suffix", "</w>"}};
  const Tokenizer tok = load(dir, j);
  EXPECT_EQ(tok.encode("ab ab"), (std::vector<int32_t>{2, 2}));
  EXPECT_EQ(tok.decode(tok.encode("ab ab")), "ab ab");
}

// A character-level vocabulary over printable ASCII plus a few extras, no merges.
json char_vocab() {
  json vocab = json::object();
  int id = 0;
  for (int c = 32; c < 127; ++c) vocab[std::string(1, static_cast<char>(c))] = id++;
  for (const char* extra : {"\xE2\x96\x81", "\xC3\xA9", "e\xCC\x81", "\xCC\x81", "\n"}) vocab[extra] = id++;
  return vocab;
}

std::vector<std::string> tokens_of(const json& j, const std::string& text, const std::string& name) {
  TempDir dir(name);
  return load(dir, j).encode_tokens(text);
}

TEST(TokenizerMicro, AddedTokenFlags) {
  json added = json::array();
  auto add = [&](int id, const char* content, bool lstrip, bool rstrip, bool single_word) {
    added.push_back({{"id", id}, {"content", content}, {"single_word", single_word}, {"lstrip", lstrip},
                     {"rstrip", rstrip}, {"normalized", false}, {"special", true}});
  };
  add(1000, "<x>", true, true, false);
  add(1001, "<xy>", false, false, false);
  add(1002, "tok", false, false, true);
  json j = micro_tokenizer(bpe_model(char_vocab(), json::array()), added);
  // Longest match first: "<xy>" wins over "<x>" at the same position.
  EXPECT_EQ(tokens_of(j, "a<xy>b", "added1"), (std::vector<std::string>{"a", "<xy>", "b"}));
  // lstrip / rstrip swallow the surrounding whitespace; as in HF, the token string is the matched text.
  EXPECT_EQ(tokens_of(j, "a  <x>  b", "added2"), (std::vector<std::string>{"a", "  <x>  ", "b"}));
  // single_word: only matched when not inside a word.
  EXPECT_EQ(tokens_of(j, "tok atok tok.", "added3"),
            (std::vector<std::string>{"tok", " ", "a", "t", "o", "k", " ", "tok", "."}));
}

TEST(TokenizerMicro, NormalizersPreTokenizersDecoders) {
  json j = micro_tokenizer(bpe_model(char_vocab(), json::array()));
  j["normalizer"] = {{"type", "Sequence"},
                     {"normalizers",
                      {{{"type", "NFKD"}},
                       {{"type", "StripAccents"}},
                       {{"type", "Lowercase"}},
                       {{"type", "Strip"}, {"strip_left", true}, {"strip_right", true}},
                       {{"type", "Replace"}, {"pattern", {{"Regex", "[0-9]+"}}}, {"content", "#"}}}}};
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  EXPECT_EQ(tokens_of(j, "  Caf\xC3\xA9 12,3  ", "norm1"), (std::vector<std::string>{"c", "a", "f", "e", "#", ",", "#"}));

  json m = micro_tokenizer(bpe_model(char_vocab(), json::array()));
  m["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "first"},
                        {"split", true}};
  m["decoder"] = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "first"}};
  {
    TempDir dir("meta");
    const Tokenizer tok = load(dir, m);
    EXPECT_EQ(tok.encode_tokens("a b"), (std::vector<std::string>{"\xE2\x96\x81", "a", "\xE2\x96\x81", "b"}));
    EXPECT_EQ(tok.decode(tok.encode("a b")), "a b");
  }
  json d = micro_tokenizer(bpe_model(char_vocab(), json::array()));
  d["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers",
                         {{{"type", "Digits"}, {"individual_digits", false}},
                          {{"type", "Punctuation"}, {"behavior", "Isolated"}},
                          {{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", "MergedWithPrevious"}}}}};
  d["decoder"] = {{"type", "Sequence"},
                  {"decoders",
                   {{{"type", "Replace"}, {"pattern", {{"String", "1"}}}, {"content", "one"}},
                    {{"type", "Fuse"}},
                    {{"type", "Strip"}, {"content", "x"}, {"start", 1}, {"stop", 2}}}}};
  {
    TempDir dir("digits");
    const Tokenizer tok = load(dir, d);
    EXPECT_EQ(tok.encode_tokens("ab12!"), (std::vector<std::string>{"a", "b", "1", "2", "!"}));
    // Strip removes one leading and up to two trailing "x" from the fused text.
    EXPECT_EQ(tok.decode(tok.encode("xx1yxx")), "xoney");
  }
}

TEST(TokenizerMicro, ByteLevelDecoderIsUtf8Lossy) {
  const Tokenizer tok = Tokenizer::from_file(kDataDir / "hf/tokenizers/gpt2_bpe/tokenizer.json");
  // Byte-level tokens for single bytes: the id of the character that stands for byte b.
  auto byte_id = [&](int b) {
    int n = 0;
    char32_t cp = 0;
    for (int x = 0; x < 256; ++x) {
      const bool printable = (x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF);
      const char32_t c = printable ? static_cast<char32_t>(x) : 256 + n++;
      if (x == b) cp = c;
    }
    std::string utf8;
    if (cp < 0x80) {
      utf8.push_back(static_cast<char>(cp));
    } else {
      utf8.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      utf8.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
    auto id = tok.token_to_id(utf8);
    EXPECT_TRUE(id.has_value()) << b;
    return id.value_or(0);
  };
  const std::string fffd = "\xEF\xBF\xBD";
  struct Case {
    std::vector<int> bytes;
    std::string expected;
  };
  // Rust's from_utf8_lossy: one U+FFFD per maximal invalid subsequence.
  const std::vector<Case> cases = {
      {{'a', 0x80, 'b'}, "a" + fffd + "b"},               // stray continuation byte
      {{0xE2, 0x82}, fffd},                               // truncated 3-byte sequence: one replacement
      {{0xE2, 0x82, 'x'}, fffd + "x"},                    // broken 3-byte sequence, then ASCII
      {{0xE2, 0x82, 0xAC}, "\xE2\x82\xAC"},               // valid euro sign
      {{0xC0, 0x80}, fffd + fffd},                        // overlong lead byte, then stray continuation
      {{0xED, 0xA0, 0x80}, fffd + fffd + fffd},           // surrogate: ED must be followed by 80..9F
      {{0xF0, 0x9F, 0x98}, fffd},                         // truncated 4-byte sequence
      {{0xF5, 'a'}, fffd + "a"},                          // byte that never starts a sequence
      {{0xF0, 0x80, 0x80, 0x80}, fffd + fffd + fffd + fffd},  // F0 needs 90..BF next
      {{0xFF, 0xFE}, fffd + fffd},
  };
  for (const Case& c : cases) {
    std::vector<int32_t> ids;
    for (int b : c.bytes) ids.push_back(byte_id(b));
    EXPECT_EQ(tok.decode(ids), c.expected);
  }
}

// ------------------------------------------------------------------------------------------------- error paths

TEST(TokenizerErrors, MissingFilesAndMalformedJson) {
  EXPECT_EQ(palign::test::error_code_of([] { Tokenizer::from_file("/nonexistent/tokenizer.json"); }), ErrorCode::kNotFound);
  TempDir dir("errors");
  EXPECT_EQ(palign::test::error_code_of([&] { Tokenizer::from_dir(dir.path()); }), ErrorCode::kNotFound);
  const fs::path bad = dir.write("tokenizer.json", "{\"model\": {\"type\": \"BPE\", ");
  try {
    Tokenizer::from_file(bad);
    FAIL() << "no throw";
  } catch (const palign::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find(bad.string()), std::string::npos) << e.what();
  }
  dir.write("tokenizer.json", micro_tokenizer(bpe_model({{"a", 0}}, json::array())).dump());
  dir.write("tokenizer_config.json", "{not json");
  EXPECT_EQ(palign::test::error_code_of([&] { Tokenizer::from_dir(dir.path()); }), ErrorCode::kInvalidArgument);
  // A merge that uses a token outside the vocabulary.
  EXPECT_EQ(palign::test::error_code_of([&] { load(dir, micro_tokenizer(bpe_model({{"a", 0}}, {"a b"}))); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(palign::test::error_code_of([&] { load(dir, micro_tokenizer(bpe_model({{"a", 0}}, {"a b c"}))); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(palign::test::error_code_of([&] { load(dir, micro_tokenizer(bpe_model({{"a", "zero"}}, json::array()))); }),
            ErrorCode::kInvalidArgument);
}

TEST(TokenizerErrors, OutOfRangeIdsAndRunawayRegexesNameTheFile) {
  TempDir dir("ranges");
  std::string msg;
  auto message_of = [&](const json& j) {
    try {
      load(dir, j);
    } catch (const palign::Error& e) {
      msg = e.what();
      return e.code();
    }
    return ErrorCode::kSentinel;
  };
  // An id of 2^31 - 1 sized the id -> token table by it (an overflow, then an allocation failure).
  EXPECT_EQ(message_of(micro_tokenizer(bpe_model({{"a", 0}, {"b", 2147483647}}, json::array()))),
            ErrorCode::kInvalidArgument);
  EXPECT_NE(msg.find("model.vocab[\"b\"]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("tokenizer.json"), std::string::npos) << msg;
  EXPECT_EQ(message_of(micro_tokenizer(bpe_model({{"a", 0}}, json::array()),
                                       json::array({{{"id", 2147483647}, {"content", "<x>"}}}))),
            ErrorCode::kInvalidArgument);
  EXPECT_NE(msg.find("added token"), std::string::npos) << msg;

  // A pre-tokenizer regex that backtracks catastrophically runs into PCRE2's match limit: a tokenizer.json error
  // naming the pattern, not an internal error.
  json j = micro_tokenizer(bpe_model({{"a", 0}, {"b", 1}}, json::array()));
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(a|a)+$"}}}, {"behavior", "Isolated"}};
  const Tokenizer tok = load(dir, j);
  EXPECT_EQ(tok.encode("aab").size(), 3u);
  try {
    tok.encode(std::string(64, 'a') + "b");
    ADD_FAILURE() << "no throw";
  } catch (const palign::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    EXPECT_NE(std::string(e.what()).find("(a|a)+$"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("tokenizer.json"), std::string::npos) << e.what();
    std::printf("  expected error: %s\n", e.what());
  }
}

TEST(TokenizerErrors, UnknownComponentTypesAreUnsupported) {
  TempDir dir("unsupported");
  const json base = micro_tokenizer(bpe_model({{"a", 0}}, json::array()));
  auto expect_unsupported = [&](const char* field, json value, const std::string& type_name) {
    json j = base;
    j[field] = value;
    try {
      load(dir, j);
      ADD_FAILURE() << field << " did not throw";
    } catch (const palign::Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kUnsupported) << e.what();
      EXPECT_NE(std::string(e.what()).find("\"" + type_name + "\""), std::string::npos) << e.what();
      std::printf("  expected error: %s\n", e.what());
    }
  };
  expect_unsupported("normalizer", {{"type", "BertNormalizer"}}, "BertNormalizer");
  expect_unsupported("pre_tokenizer", {{"type", "BertPreTokenizer"}}, "BertPreTokenizer");
  expect_unsupported("pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", {{{"type", "UnicodeScripts"}}}}},
                     "UnicodeScripts");
  expect_unsupported("decoder", {{"type", "CTC"}}, "CTC");
  expect_unsupported("post_processor", {{"type", "Mystery"}}, "Mystery");
  expect_unsupported("model", {{"type", "Unigram"}, {"vocab", json::array()}}, "Unigram");
  expect_unsupported("model", {{"type", "WordPiece"}, {"vocab", json::object()}}, "WordPiece");
}

TEST(TokenizerErrors, DecodeOfOutOfRangeIdAndInvalidUtf8Input) {
  const Tokenizer tok = Tokenizer::from_file(kDataDir / "hf/tokenizers/gpt2_bpe/tokenizer.json");
  EXPECT_EQ(palign::test::error_code_of([&] { tok.decode(std::vector<int32_t>{1, tok.vocab_size()}); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(palign::test::error_code_of([&] { tok.decode(std::vector<int32_t>{-1}); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(palign::test::error_code_of([&] { tok.encode("bad \xC3 byte"); }), ErrorCode::kInvalidArgument);
}

// -------------------------------------------------------------------------------------------------- throughput

// Whether s is well-formed UTF-8 (lead byte plus the right number of continuation bytes; enough for the corpus).
bool is_valid_utf8(std::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    const auto b = static_cast<unsigned char>(s[pos]);
    const int len = b < 0x80 ? 1 : (b >= 0xC2 && b < 0xE0) ? 2 : (b >= 0xE0 && b < 0xF0) ? 3 : (b >= 0xF0 && b < 0xF5) ? 4 : 0;
    if (len == 0 || pos + len > s.size()) return false;
    for (int i = 1; i < len; ++i) {
      if ((static_cast<unsigned char>(s[pos + i]) & 0xC0) != 0x80) return false;
    }
    pos += len;
  }
  return true;
}

TEST(TokenizerThroughput, EncodeAboutOneMegabyteOfFortunes) {
  std::string text;
  const fs::path fortunes = "/usr/share/games/fortunes";
  if (fs::is_directory(fortunes)) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(fortunes)) {
      if (entry.is_regular_file() && !entry.path().has_extension()) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& file : files) {
      std::ifstream in(file, std::ios::binary);
      for (std::string line; std::getline(in, line) && text.size() < (1u << 20);) {
        if (is_valid_utf8(line)) text += line + "\n";
      }
    }
  }
  if (text.empty()) GTEST_SKIP() << "no fortunes corpus at " << fortunes;
  for (const std::string& name : kFixtureTokenizers) {
    const Tokenizer tok = Tokenizer::from_file(kDataDir / "hf" / "tokenizers" / name / "tokenizer.json");
    const auto start = std::chrono::steady_clock::now();
    const auto ids = tok.encode(text);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%-16s encode %.2f MB in %.3f s: %.2f MB/s, %zu tokens\n", name.c_str(), text.size() / 1e6, seconds,
                text.size() / 1e6 / seconds, ids.size());
    EXPECT_EQ(tok.decode(ids), name == "qwen2_bpe" ? tok.decode(tok.encode(text)) : text);
  }
}

}  // namespace
