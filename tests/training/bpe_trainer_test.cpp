// The byte-level BPE trainer: merges worked out by hand on micro corpora, the incremental trainer against a naive
// twin that recounts every pair before each merge, round-trips of the whole fortunes corpus through the runtime's
// Tokenizer, determinism, the written schema, the JSONL reader, and the bad-input paths.
#include "palign/training/bpe_trainer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "palign/base/error.h"
#include "palign/runtime/chat_template.h"
#include "palign/runtime/pretokenize.h"
#include "palign/runtime/tokenizer.h"
#include "palign/scoring/fortunes.h"
#include "temp_dir.h"

using namespace palign;
using namespace palign::training;
namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

using palign::test::fresh_dir;

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Json read_json(const fs::path& path) { return Json::parse(read_text(path)); }

std::vector<std::pair<std::string, std::string>> merges_of(const Json& tokenizer) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const Json& m : tokenizer["model"]["merges"]) out.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
  return out;
}

BpeTrainOptions quiet(int64_t vocab_size, int64_t min_frequency = 2) {
  BpeTrainOptions o;
  o.vocab_size = vocab_size;
  o.min_frequency = min_frequency;
  o.progress = false;
  return o;
}

ErrorCode code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    std::printf("  error: %s\n", e.what());
    return e.code();
  }
  return ErrorCode::kSentinel;
}

// The slow, obviously correct twin: recount every pair of every word before each merge; the most frequent pair
// wins, ties to the smaller (left id, right id). Returns the merges as token strings.
std::vector<std::pair<std::string, std::string>> naive_bpe(const std::vector<std::string>& texts,
                                                           const BpeTrainOptions& o) {
  std::vector<std::string> vocab(o.special_tokens);
  std::vector<std::string> alphabet(runtime::byte_level_alphabet().begin(), runtime::byte_level_alphabet().end());
  std::sort(alphabet.begin(), alphabet.end());
  vocab.insert(vocab.end(), alphabet.begin(), alphabet.end());
  std::map<std::string, int32_t> ids;
  for (size_t i = 0; i < vocab.size(); ++i) ids[vocab[i]] = static_cast<int32_t>(i);
  std::map<std::string, int64_t> counts;
  const runtime::ByteLevelSplitter splitter(o.pattern);
  for (const std::string& text : texts)
    for (const std::string& piece : splitter.split(text)) ++counts[piece];
  std::vector<std::pair<std::vector<int32_t>, int64_t>> words;
  for (const auto& [text, count] : counts) {
    std::vector<int32_t> symbols;
    for (size_t pos = 0; pos < text.size();) {
      const size_t len = static_cast<unsigned char>(text[pos]) < 0x80 ? 1 : 2;
      symbols.push_back(ids.at(text.substr(pos, len)));
      pos += len;
    }
    words.emplace_back(std::move(symbols), count);
  }
  std::vector<std::pair<std::string, std::string>> merges;
  while (static_cast<int64_t>(vocab.size()) < o.vocab_size) {
    std::map<std::pair<int32_t, int32_t>, int64_t> pairs;
    for (const auto& [symbols, count] : words)
      for (size_t i = 0; i + 1 < symbols.size(); ++i) pairs[{symbols[i], symbols[i + 1]}] += count;
    std::pair<int32_t, int32_t> best{};
    int64_t best_count = 0;
    for (const auto& [pair, count] : pairs)  // ascending pair order, so a strict > keeps the smallest on ties
      if (count > best_count) best = pair, best_count = count;
    if (best_count < o.min_frequency) break;
    const std::string merged = vocab[best.first] + vocab[best.second];
    int32_t new_id;
    if (ids.count(merged)) {
      new_id = ids[merged];
    } else {
      new_id = static_cast<int32_t>(vocab.size());
      vocab.push_back(merged);
      ids[merged] = new_id;
    }
    merges.emplace_back(vocab[best.first], vocab[best.second]);
    for (auto& [symbols, count] : words) {
      std::vector<int32_t> next;
      for (size_t i = 0; i < symbols.size();) {
        if (i + 1 < symbols.size() && symbols[i] == best.first && symbols[i + 1] == best.second) {
          next.push_back(new_id);
          i += 2;
        } else {
          next.push_back(symbols[i++]);
        }
      }
      symbols = std::move(next);
    }
  }
  return merges;
}

// ids: <|endoftext|> 0, <|pad|> 1, then the byte symbols by code point: '!' (U+21) is 2, so ASCII c is c - 31;
// U+0100..U+0143 (the bytes that are not printable) are 190..257, so 'Ġ' (U+0120, the space byte) is 222.
TEST(BpeTrainer, HandComputedMergesOnAaab) {
  const fs::path dir = fresh_dir("aaab");
  // One word "aaab" x3: pairs (a,a) 6, (a,b) 3 -> merge a+a (id 258): [aa a b] gives (aa,a) 3, (a,b) 3; the tie goes
  // to the smaller ids, (a,b) = (66, 67) < (258, 66) -> ab (259); then aa+ab (260); then nothing is left to merge.
  const auto report = train_bpe_tokenizer({"aaab", "aaab", "aaab"}, quiet(300), dir);
  EXPECT_EQ(report.merges, 3);
  EXPECT_EQ(report.vocab_size, 261);
  EXPECT_EQ(report.words, 3);
  EXPECT_EQ(report.unique_words, 1);
  const Json j = read_json(dir / "tokenizer.json");
  const std::vector<std::pair<std::string, std::string>> expected = {{"a", "a"}, {"a", "b"}, {"aa", "ab"}};
  EXPECT_EQ(merges_of(j), expected);
  const Json& vocab = j["model"]["vocab"];
  EXPECT_EQ(vocab.size(), 261u);
  EXPECT_EQ(vocab["<|endoftext|>"], 0);
  EXPECT_EQ(vocab["<|pad|>"], 1);
  EXPECT_EQ(vocab["!"], 2);
  EXPECT_EQ(vocab["a"], 66);
  EXPECT_EQ(vocab["b"], 67);
  EXPECT_EQ(vocab["\xC4\x80"], 190);  // Ā, byte 0x00
  EXPECT_EQ(vocab["\xC4\xA0"], 222);  // Ġ, byte 0x20
  EXPECT_EQ(vocab["aa"], 258);
  EXPECT_EQ(vocab["ab"], 259);
  EXPECT_EQ(vocab["aaab"], 260);

  const auto tok = runtime::Tokenizer::from_dir(dir);
  EXPECT_EQ(tok.encode("aaab"), (std::vector<int32_t>{260}));
  EXPECT_EQ(tok.encode("aab"), (std::vector<int32_t>{258, 67}));
  EXPECT_EQ(tok.encode("ab"), (std::vector<int32_t>{259}));
}

TEST(BpeTrainer, HandComputedMergesOnLowLowerLowest) {
  const fs::path dir = fresh_dir("low");
  // Words "low", "Ġlower", "Ġlowest" once each: (l,o) 3 and (o,w) 3 tie -> l+o (258); lo+w 3 (259); then
  // (Ġ,low) 2 and (low,e) 2 tie, (222, 259) < (259, 70) -> Ġ+low (260); Ġlow+e 2 (261); every other pair is seen
  // once, below min_frequency 2.
  const auto report = train_bpe_tokenizer({"low lower lowest"}, quiet(1000), dir);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"l", "o"}, {"lo", "w"}, {"\xC4\xA0", "low"}, {"\xC4\xA0low", "e"}};
  const Json j = read_json(dir / "tokenizer.json");
  EXPECT_EQ(merges_of(j), expected);
  EXPECT_EQ(report.words, 3);
  EXPECT_EQ(report.vocab_size, 262);
  EXPECT_EQ(j["model"]["vocab"]["\xC4\xA0lowe"], 261);
  // vocab_size caps the merges: 258 + 2 = 260 tokens allows exactly two.
  const auto capped = train_bpe_tokenizer({"low lower lowest"}, quiet(260), dir);
  EXPECT_EQ(capped.merges, 2);
  EXPECT_EQ(capped.vocab_size, 260);
  // min_frequency 1 continues with the pairs seen once.
  const auto all = train_bpe_tokenizer({"low lower lowest"}, quiet(1000, /*min_frequency=*/1), dir);
  EXPECT_GT(all.merges, 4);
}

TEST(BpeTrainer, SpecialTokensInTheTextAreCutOutBeforeCounting) {
  const fs::path dir = fresh_dir("specials");
  // "<|endoftext|>" between the words would otherwise be counted as the pre-tokens "<|", "endoftext", "|>".
  const auto report = train_bpe_tokenizer({"aaab<|endoftext|>aaab<|pad|>aaab"}, quiet(300), dir);
  EXPECT_EQ(report.words, 3);
  EXPECT_EQ(report.unique_words, 1);
  const std::vector<std::pair<std::string, std::string>> expected = {{"a", "a"}, {"a", "b"}, {"aa", "ab"}};
  EXPECT_EQ(merges_of(read_json(dir / "tokenizer.json")), expected);
}

TEST(BpeTrainer, IncrementalCountsMatchANaiveTwin) {
  const auto records = scoring::read_fortunes();
  std::vector<std::string> texts;
  for (size_t i = 0; i < records.size() && texts.size() < 400; i += 7) texts.push_back(records[i].text);
  const fs::path dir = fresh_dir("twin");
  // (vocab, min_frequency): the first run stops at the vocabulary size, the others when no pair is frequent enough.
  const std::vector<std::pair<int64_t, int64_t>> runs = {{700, 1}, {6000, 4}, {6000, 12}};
  for (const auto& [vocab_size, min_frequency] : runs) {
    const BpeTrainOptions o = quiet(vocab_size, min_frequency);
    train_bpe_tokenizer(texts, o, dir);
    const auto fast = merges_of(read_json(dir / "tokenizer.json"));
    const auto naive = naive_bpe(texts, o);
    size_t first_diff = 0;
    while (first_diff < std::min(fast.size(), naive.size()) && fast[first_diff] == naive[first_diff]) ++first_diff;
    std::printf("naive twin, %zu texts, vocab_size %ld, min_frequency %ld: %zu merges, identical prefix %zu\n",
                texts.size(), static_cast<long>(vocab_size), static_cast<long>(min_frequency), fast.size(), first_diff);
    EXPECT_EQ(fast.size(), naive.size());
    EXPECT_EQ(first_diff, std::min(fast.size(), naive.size()));
  }
}

// Golden merges from HF tokenizers' BpeTrainer (tests/data/bpe/hf_trainer/meta.json says how they were made). HF
// trains on files line by line, each line keeping its newline, and its ids differ from palign's (no special tokens,
// only the characters seen), but both orders agree, so the tie-breaks and therefore the merges must be identical.
TEST(BpeTrainer, MergesMatchHuggingFaceTokenizersBpeTrainer) {
  const fs::path fixture = fs::path(PALIGN_TEST_DATA_DIR) / "bpe" / "hf_trainer";
  const std::string corpus = read_text(fixture / "corpus.txt");
  ASSERT_FALSE(corpus.empty());
  std::vector<std::string> lines;
  for (size_t pos = 0; pos < corpus.size();) {
    const size_t end = std::min(corpus.find('\n', pos), corpus.size() - 1) + 1;
    lines.push_back(corpus.substr(pos, end - pos));
    pos = end;
  }
  const fs::path dir = fresh_dir("hf");
  train_bpe_tokenizer(lines, quiet(100000, /*min_frequency=*/1), dir);
  const auto ours = merges_of(read_json(dir / "tokenizer.json"));
  std::vector<std::pair<std::string, std::string>> reference;
  for (const Json& m : read_json(fixture / "merges.json")) reference.emplace_back(m[0], m[1]);
  const size_t common = std::min(ours.size(), reference.size());
  size_t first_diff = 0;
  while (first_diff < common && ours[first_diff] == reference[first_diff]) ++first_diff;
  std::printf("HF BpeTrainer fixture: %zu lines, %zu merges (HF %zu), identical prefix %zu\n", lines.size(),
              ours.size(), reference.size(), first_diff);
  EXPECT_EQ(ours.size(), reference.size());
  EXPECT_EQ(first_diff, reference.size());
}

TEST(BpeTrainer, FortunesRoundTripThroughTheRuntimeTokenizer) {
  const auto records = scoring::read_fortunes();
  std::vector<std::string> texts;
  int64_t bytes = 0;
  for (const auto& r : records) {
    texts.push_back(r.text);
    bytes += static_cast<int64_t>(r.text.size());
  }
  const fs::path dir = fresh_dir("fortunes");
  const auto report = train_bpe_tokenizer(texts, quiet(4096), dir);
  std::printf("trained on %zu fortunes (%.2f MB, %ld words, %ld unique): vocab %ld, %ld merges in %.2f s\n",
              texts.size(), bytes / 1e6, static_cast<long>(report.words), static_cast<long>(report.unique_words),
              static_cast<long>(report.vocab_size), static_cast<long>(report.merges), report.seconds);
  EXPECT_EQ(report.vocab_size, 4096);

  const auto tok = runtime::Tokenizer::from_dir(dir);
  EXPECT_EQ(tok.vocab_size(), 4096);
  const auto start = std::chrono::steady_clock::now();
  int64_t tokens = 0, mismatches = 0;
  for (const std::string& text : texts) {
    const auto ids = tok.encode(text);
    tokens += static_cast<int64_t>(ids.size());
    const std::string back = tok.decode(ids);
    if (back != text && mismatches++ < 3) ADD_FAILURE() << "round trip differs for: " << text << "\ngot: " << back;
  }
  const double encode_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "round-tripped %zu records (%ld mismatches): %ld tokens, %.4f tokens/byte (%.2f bytes/token); "
      "encode+decode %.2f s\n",
      texts.size(), static_cast<long>(mismatches), static_cast<long>(tokens), double(tokens) / bytes,
      double(bytes) / tokens, encode_seconds);
  EXPECT_EQ(mismatches, 0);
  EXPECT_LT(double(tokens) / bytes, 0.5) << "a 4096-token BPE should need well under one token per two bytes";
  // Bytes never seen in training still encode and decode (every byte has a token).
  const std::string rare = "\xF0\x9F\xA6\x80 \xE4\xB8\xAD\xE6\x96\x87 \x01\x7F";
  EXPECT_EQ(tok.decode(tok.encode(rare)), rare);
}

TEST(BpeTrainer, LoadsInTheRuntimeWithEosPadAndBos) {
  const fs::path dir = fresh_dir("load");
  train_bpe_tokenizer({"the cat sat on the mat", "the dog sat on the log", "a cat and a dog"}, quiet(400), dir);
  const auto tok = runtime::Tokenizer::from_dir(dir);
  EXPECT_EQ(tok.eos_id(), 0);
  EXPECT_EQ(tok.pad_id(), 1);
  EXPECT_EQ(tok.bos_id(), 0);
  EXPECT_TRUE(tok.is_special(0));
  EXPECT_TRUE(tok.is_special(1));
  const auto with_bos = tok.encode("the cat", /*add_special=*/true);
  ASSERT_FALSE(with_bos.empty());
  EXPECT_EQ(with_bos[0], 0);
  EXPECT_EQ(tok.encode("the cat", /*add_special=*/false).size() + 1, with_bos.size());
  EXPECT_EQ(tok.encode("a<|pad|>b"), (std::vector<int32_t>{tok.encode("a")[0], 1, tok.encode("b")[0]}));
  EXPECT_EQ(tok.decode(with_bos, /*skip_special=*/true), "the cat");

  // The schema of the HF fixtures.
  const Json j = read_json(dir / "tokenizer.json");
  EXPECT_EQ(j["version"], "1.0");
  EXPECT_TRUE(j["truncation"].is_null());
  EXPECT_TRUE(j["padding"].is_null());
  EXPECT_TRUE(j["normalizer"].is_null());
  ASSERT_EQ(j["added_tokens"].size(), 2u);
  EXPECT_EQ(j["added_tokens"][1]["content"], "<|pad|>");
  EXPECT_EQ(j["added_tokens"][1]["id"], 1);
  EXPECT_EQ(j["added_tokens"][1]["special"], true);
  EXPECT_EQ(j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"], kLlama3SplitPattern);
  EXPECT_EQ(j["pre_tokenizer"]["pretokenizers"][1]["type"], "ByteLevel");
  EXPECT_EQ(j["post_processor"]["single"][0]["SpecialToken"]["id"], "<|endoftext|>");
  EXPECT_EQ(j["post_processor"]["pair"].size(), 4u);
  EXPECT_EQ(j["decoder"]["type"], "ByteLevel");
  EXPECT_EQ(j["model"]["type"], "BPE");
  EXPECT_EQ(j["model"]["byte_fallback"], false);
  const Json fixture = read_json(fs::path(PALIGN_TEST_DATA_DIR) / "hf/tokenizers/llama3_bpe/tokenizer.json");
  std::vector<std::string> keys, fixture_keys;
  for (const auto& [key, value] : j.items()) keys.push_back(key);
  for (const auto& [key, value] : fixture.items()) fixture_keys.push_back(key);
  EXPECT_EQ(keys, fixture_keys);
  keys.clear(), fixture_keys.clear();
  for (const auto& [key, value] : j["model"].items()) keys.push_back(key);
  for (const auto& [key, value] : fixture["model"].items()) fixture_keys.push_back(key);
  EXPECT_EQ(keys, fixture_keys);
  EXPECT_EQ(j["pre_tokenizer"], fixture["pre_tokenizer"]);
  EXPECT_EQ(j["decoder"], fixture["decoder"]);

  const Json config = read_json(dir / "tokenizer_config.json");
  EXPECT_EQ(config["bos_token"], "<|endoftext|>");
  EXPECT_EQ(config["eos_token"], "<|endoftext|>");
  EXPECT_EQ(config["pad_token"], "<|pad|>");
  EXPECT_EQ(config["chat_template"], std::string(palign::runtime::kContinuationChatTemplate));
  EXPECT_EQ(config["model_max_length"], 1000000);
  EXPECT_EQ(config["tokenizer_class"], "PreTrainedTokenizerFast");
  EXPECT_EQ(config["clean_up_tokenization_spaces"], false);
}

TEST(BpeTrainer, TwoRunsWriteByteIdenticalFiles) {
  const auto records = scoring::read_fortunes();
  std::vector<std::string> texts;
  for (size_t i = 0; i < records.size() && texts.size() < 3000; i += 3) texts.push_back(records[i].text);
  const fs::path a = fresh_dir("det_a"), b = fresh_dir("det_b");
  train_bpe_tokenizer(texts, quiet(1500), a);
  train_bpe_tokenizer(texts, quiet(1500), b);
  const std::string ja = read_text(a / "tokenizer.json");
  EXPECT_GT(ja.size(), 10000u);
  EXPECT_EQ(ja, read_text(b / "tokenizer.json"));
  EXPECT_EQ(read_text(a / "tokenizer_config.json"), read_text(b / "tokenizer_config.json"));
}

TEST(BpeTrainer, BadInputsAreClearErrors) {
  const fs::path dir = fresh_dir("bad");
  EXPECT_EQ(code_of([&] { train_bpe_tokenizer({}, quiet(300), dir / "a"); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of([&] { train_bpe_tokenizer({"", ""}, quiet(300), dir / "a"); }), ErrorCode::kInvalidArgument);
  try {
    train_bpe_tokenizer({"abc"}, quiet(257), dir / "a");
    ADD_FAILURE() << "vocab_size 257 was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("minimum is 258"), std::string::npos) << e.what();
  }
  EXPECT_EQ(code_of([&] { train_bpe_tokenizer({"abc"}, quiet(300), "/proc/palign_cannot_write_here"); }),
            ErrorCode::kIo);
  BpeTrainOptions dup = quiet(300);
  dup.special_tokens = {"<|endoftext|>", "<|pad|>", "<|endoftext|>"};
  EXPECT_EQ(code_of([&] { train_bpe_tokenizer({"abc"}, dup, dir / "a"); }), ErrorCode::kInvalidArgument);
  BpeTrainOptions none = quiet(300);
  none.special_tokens = {};
  EXPECT_FALSE(none.validate().empty());
  BpeTrainOptions byte_symbol = quiet(300);
  byte_symbol.special_tokens = {"a"};
  EXPECT_FALSE(byte_symbol.validate().empty());
  BpeTrainOptions bad_regex = quiet(300);
  bad_regex.pattern = "(unclosed";
  EXPECT_EQ(code_of([&] { train_bpe_tokenizer({"abc"}, bad_regex, dir / "a"); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of([&] {
              train_bpe_tokenizer({"ok", "caf\xE9"}, quiet(300), dir / "a");
            }),
            ErrorCode::kInvalidArgument);
  EXPECT_TRUE(quiet(300).validate().empty());
}

TEST(BpeTrainer, ReadsTheTrainSplitOfAJsonlCorpus) {
  const fs::path dir = fresh_dir("jsonl");
  {
    std::ofstream out(dir / "c.jsonl");
    out << R"({"text": "one", "split": "train"})"
        << "\n"
        << R"({"text": "two", "split": "valid"})"
        << "\n\n"
        << R"({"text": "three"})"
        << "\n";
  }
  EXPECT_EQ(read_corpus_texts(dir / "c.jsonl"), (std::vector<std::string>{"one", "three"}));
  EXPECT_EQ(read_corpus_texts(dir / "c.jsonl", "valid"), (std::vector<std::string>{"two"}));
  EXPECT_EQ(read_corpus_texts(dir / "c.jsonl", "").size(), 3u);
  EXPECT_EQ(code_of([&] { read_corpus_texts(dir / "c.jsonl", "test"); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of([&] { read_corpus_texts(dir / "missing.jsonl"); }), ErrorCode::kNotFound);
  {
    std::ofstream out(dir / "bad.jsonl");
    out << R"({"text": "one"})"
        << "\n"
        << "{not json\n";
  }
  try {
    read_corpus_texts(dir / "bad.jsonl");
    ADD_FAILURE() << "a bad line was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:2"), std::string::npos) << e.what();
  }
  {
    std::ofstream out(dir / "notext.jsonl");
    out << R"({"txt": "one"})"
        << "\n";
  }
  EXPECT_EQ(code_of([&] { read_corpus_texts(dir / "notext.jsonl"); }), ErrorCode::kInvalidArgument);
  { std::ofstream out(dir / "empty.jsonl"); }
  EXPECT_EQ(code_of([&] { read_corpus_texts(dir / "empty.jsonl"); }), ErrorCode::kInvalidArgument);
}

}  // namespace
