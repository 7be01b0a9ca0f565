// safetensors, config.json and model-directory loading: round trips, both config forms, sharded weights, and
// every bad-input path with its error code.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "palign/base/error.h"
#include "palign/runtime/config.h"
#include "palign/runtime/model.h"
#include "palign/runtime/safetensors.h"
#include "temp_dir.h"
#include "test_util.h"

using namespace palign;
using namespace palign::runtime;
namespace fs = std::filesystem;

namespace {

using palign::test::fresh_dir;

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string with_header(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

ErrorCode open_error(const fs::path& p, std::string* message = nullptr) {
  try {
    SafetensorsFile::open(p);
  } catch (const Error& e) {
    if (message) *message = e.what();
    return e.code();
  }
  return ErrorCode::kSentinel;
}

TEST(Safetensors, RoundTripAllDtypes) {
  auto dir = fresh_dir("st_roundtrip");
  at::Tensor f = at::randn({3, 5});
  std::vector<std::pair<std::string, at::Tensor>> tensors = {{"f32", f},
                                                             {"f16", f.to(at::kHalf)},
                                                             {"bf16", f.to(at::kBFloat16)},
                                                             {"i64", at::arange(7, at::kLong)},
                                                             {"empty", at::zeros({0, 4})}};
  save_safetensors(dir / "a.safetensors", tensors, {{"format", "pt"}});
  auto file = SafetensorsFile::open(dir / "a.safetensors");
  EXPECT_EQ(file.metadata().at("format"), "pt");
  for (const auto& [name, t] : tensors) {
    at::Tensor back = file.get(name);
    EXPECT_EQ(back.scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(back.equal(t)) << name;
  }
  EXPECT_TRUE(file.get_f32("bf16").equal(f.to(at::kBFloat16).to(at::kFloat)));
  EXPECT_EQ(file.tensors().at("f16").dtype, DType::kF16);
  fs::remove_all(dir);
}

TEST(Safetensors, BadFilesAreClearErrors) {
  auto dir = fresh_dir("st_bad");
  std::string msg;
  EXPECT_EQ(open_error(dir / "missing.safetensors"), ErrorCode::kNotFound);

  write_bytes(dir / "short", "abc");
  EXPECT_EQ(open_error(dir / "short", &msg), ErrorCode::kInvalidArgument);
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;

  write_bytes(dir / "huge_header", std::string("\xff\xff\xff\x00\x00\x00\x00\x00", 8) + "{}");
  EXPECT_EQ(open_error(dir / "huge_header", &msg), ErrorCode::kInvalidArgument);
  EXPECT_NE(msg.find("header length"), std::string::npos) << msg;

  write_bytes(dir / "bad_json", with_header("{not json", ""));
  EXPECT_EQ(open_error(dir / "bad_json", &msg), ErrorCode::kInvalidArgument);
  EXPECT_NE(msg.find("not valid JSON"), std::string::npos) << msg;

  write_bytes(dir / "outside",
              with_header(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", std::string(8, '\0')));
  EXPECT_EQ(open_error(dir / "outside", &msg), ErrorCode::kInvalidArgument);
  EXPECT_NE(msg.find("outside the data"), std::string::npos) << msg;

  write_bytes(dir / "inconsistent",
              with_header(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", std::string(16, '\0')));
  EXPECT_EQ(open_error(dir / "inconsistent", &msg), ErrorCode::kInvalidArgument);
  EXPECT_NE(msg.find("do not hold"), std::string::npos) << msg;
  // 2^61 elements of 8 bytes are 2^64 bytes, which wrapped to the 0 bytes given (found by fuzzing: get() then
  // threw c10::Error).
  write_bytes(dir / "wraps",
              with_header(R"({"w":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}})", ""));
  EXPECT_EQ(open_error(dir / "wraps", &msg), ErrorCode::kInvalidArgument);
  EXPECT_EQ(msg, "[runtime.safetensors] " + (dir / "wraps").string() +
                     ": tensor 'w': 0 bytes do not hold 2305843009213693952 elements of F64");

  write_bytes(dir / "overlap", with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                           R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                           std::string(12, '\0')));
  EXPECT_EQ(open_error(dir / "overlap", &msg), ErrorCode::kInvalidArgument);
  EXPECT_NE(msg.find("overlap"), std::string::npos) << msg;

  write_bytes(dir / "dtype", with_header(R"({"w":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}})", "x"));
  EXPECT_EQ(open_error(dir / "dtype", &msg), ErrorCode::kInvalidArgument);
  EXPECT_NE(msg.find("unsupported dtype"), std::string::npos) << msg;

  // The reference implementation's rule: the tensors tile the data section exactly (no gap, nothing after).
  write_bytes(dir / "gap", with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                       R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                                       std::string(12, '\0')));
  EXPECT_EQ(open_error(dir / "gap", &msg), ErrorCode::kInvalidArgument);
  EXPECT_NE(msg.find("gap"), std::string::npos) << msg;
  write_bytes(dir / "trailing",
              with_header(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", std::string(12, '\0')));
  EXPECT_EQ(open_error(dir / "trailing", &msg), ErrorCode::kInvalidArgument);
  EXPECT_NE(msg.find("header length is wrong"), std::string::npos) << msg;

  // A header length that lands in the header's padding still parses as JSON, but would shift every tensor by the
  // padding it leaves out; a length past the JSON runs into the data.
  {
    const std::string json = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    const std::string padded = json + std::string(8, ' ');
    const std::string data("\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    std::string bytes = with_header(padded, data);
    write_bytes(dir / "padding_ok", bytes);
    EXPECT_EQ(SafetensorsFile::open(dir / "padding_ok").get("w").numel(), 2);
    for (const uint64_t len : {json.size(), json.size() + 4, padded.size() + 4}) {
      for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((len >> (8 * i)) & 0xff);
      write_bytes(dir / "padding", bytes);
      EXPECT_EQ(open_error(dir / "padding", &msg), ErrorCode::kInvalidArgument) << "header length " << len;
      std::printf("header length %llu of %zu: %s\n", static_cast<unsigned long long>(len), padded.size(), msg.c_str());
    }
  }

  // A real fixture file cut in half.
  std::ifstream in(test::hf_model("llama") / "model.safetensors", std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  write_bytes(dir / "cut", all.substr(0, all.size() / 2));
  EXPECT_EQ(open_error(dir / "cut", &msg), ErrorCode::kInvalidArgument);
  std::printf("truncated fixture: %s\n", msg.c_str());
  fs::remove_all(dir);
}

TEST(Config, HubAndLibraryFormsAgree) {
  for (const std::string name :
       {"llama", "llama_untied_noscale", "qwen2", "qwen3", "mistral", "gpt2", "llama_rm", "llama_rm_multi"}) {
    auto hub = ModelConfig::load(test::hf_model(name) / "config.json");
    auto lib = ModelConfig::load(test::hf_model(name) / "config.library.json");
    EXPECT_EQ(hub.rope.type, lib.rope.type) << name;
    EXPECT_DOUBLE_EQ(hub.rope.theta, lib.rope.theta) << name;
    EXPECT_DOUBLE_EQ(hub.rope.factor, lib.rope.factor) << name;
    EXPECT_EQ(hub.head_dim, lib.head_dim) << name;
    EXPECT_EQ(hub.tie_word_embeddings, lib.tie_word_embeddings) << name;
    EXPECT_EQ(hub.num_labels, lib.num_labels) << name;
  }
  auto llama = ModelConfig::load(test::hf_model("llama") / "config.library.json");
  EXPECT_EQ(llama.rope.type, RopeType::kLlama3);
  EXPECT_DOUBLE_EQ(llama.rope.theta, 500000.0);
  auto multi = ModelConfig::load(test::hf_model("llama_rm_multi") / "config.json");
  EXPECT_EQ(multi.id2label, (std::vector<std::string>{"helpful", "concise", "formal", "humorous"}));
  auto qwen3 = ModelConfig::load(test::hf_model("qwen3") / "config.json");
  EXPECT_EQ(qwen3.head_dim, 32);
  EXPECT_TRUE(qwen3.qk_norm);
}

TEST(Config, LibraryFormLoadsTheSameLogits) {
  // A model directory whose config.json is the transformers-5 form computes the same logits.
  auto dir = fresh_dir("libform");
  for (const char* f : {"model.safetensors", "tokenizer.json"}) fs::copy_file(test::hf_model("llama") / f, dir / f);
  fs::copy_file(test::hf_model("llama") / "config.library.json", dir / "config.json");
  auto a = Model::load(test::hf_model("llama"));
  auto b = Model::load(dir);
  at::Tensor ids = at::tensor({5, 6, 7, 8}, at::kLong);
  EXPECT_TRUE(a->forward_full(ids).equal(b->forward_full(ids)));
  fs::remove_all(dir);
}

// same_body: a sequence-classification config on a causal LM's body is the same body; a change to any field that
// shapes the hidden states is not (each checked alone, so one missed field fails).
TEST(Config, SameBodyIgnoresOnlyTheHead) {
  const ModelConfig lm = ModelConfig::load(test::hf_model("llama") / "config.json");
  ModelConfig rm = lm;
  rm.architecture = "LlamaForSequenceClassification";
  rm.head = HeadKind::kSequenceClassification;
  rm.num_labels = 3;
  rm.id2label = {"a", "b", "c"};
  rm.tie_word_embeddings = !lm.tie_word_embeddings;
  rm.pad_token_id = 7;
  rm.eos_token_ids = {9};
  EXPECT_TRUE(same_body(lm, rm));
  EXPECT_TRUE(same_body(lm, lm));
  const std::vector<std::pair<const char*, std::function<void(ModelConfig&)>>> changes = {
      {"vocab_size", [](ModelConfig& c) { c.vocab_size += 1; }},
      {"hidden_size", [](ModelConfig& c) { c.hidden_size += 1; }},
      {"intermediate_size", [](ModelConfig& c) { c.intermediate_size += 1; }},
      {"n_layer", [](ModelConfig& c) { c.n_layer += 1; }},
      {"n_head", [](ModelConfig& c) { c.n_head += 1; }},
      {"n_kv_head", [](ModelConfig& c) { c.n_kv_head += 1; }},
      {"head_dim", [](ModelConfig& c) { c.head_dim += 1; }},
      {"max_position", [](ModelConfig& c) { c.max_position += 1; }},
      {"norm_eps", [](ModelConfig& c) { c.norm_eps *= 2; }},
      {"activation", [](ModelConfig& c) { c.activation = Activation::kGelu; }},
      {"rope.theta", [](ModelConfig& c) { c.rope.theta *= 2; }},
      {"rope.factor", [](ModelConfig& c) { c.rope.factor *= 2; }},
      {"rope.original_max_position", [](ModelConfig& c) { c.rope.original_max_position += 1; }},
      {"attention_bias", [](ModelConfig& c) { c.attention_bias = !c.attention_bias; }},
      {"attention_out_bias", [](ModelConfig& c) { c.attention_out_bias = !c.attention_out_bias; }},
      {"mlp_bias", [](ModelConfig& c) { c.mlp_bias = !c.mlp_bias; }},
      {"qk_norm", [](ModelConfig& c) { c.qk_norm = !c.qk_norm; }},
      {"sliding_window", [](ModelConfig& c) { c.sliding_window = 16; }},
      {"arch", [](ModelConfig& c) { c.arch = Arch::kQwen2; }},
  };
  for (const auto& [field, change] : changes) {
    ModelConfig other = rm;
    change(other);
    EXPECT_FALSE(same_body(lm, other)) << field;
  }
}

TEST(Config, BadConfigsAreClearErrors) {
  auto code_of = [](const std::string& text, std::string* msg = nullptr) {
    try {
      ModelConfig::parse(text, "test.json");
    } catch (const Error& e) {
      if (msg) *msg = e.what();
      return e.code();
    }
    return ErrorCode::kSentinel;
  };
  std::string msg;
  EXPECT_EQ(code_of("{", &msg), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of(R"({"architectures": ["BertForMaskedLM"]})", &msg), ErrorCode::kUnsupported);
  EXPECT_NE(msg.find("BertForMaskedLM"), std::string::npos);
  EXPECT_NE(msg.find("LlamaForCausalLM"), std::string::npos) << "lists what is supported";
  EXPECT_EQ(code_of(R"({"hidden_size": 8})"), ErrorCode::kInvalidArgument);
  const std::string base = R"({"architectures": ["LlamaForCausalLM"], "vocab_size": 10, "hidden_size": 8,
      "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2)";
  EXPECT_EQ(code_of(base + "}"), ErrorCode::kSentinel);
  EXPECT_EQ(code_of(base + R"(, "rope_scaling": {"rope_type": "yarn", "factor": 4}})", &msg), ErrorCode::kUnsupported);
  EXPECT_NE(msg.find("yarn"), std::string::npos);
  EXPECT_EQ(code_of(base + R"(, "num_key_value_heads": 3})"), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of(base + R"(, "hidden_act": "relu"})"), ErrorCode::kUnsupported);
  // Values that loaded and gave all-NaN logits.
  EXPECT_EQ(code_of(base + R"(, "rope_theta": 0})", &msg), ErrorCode::kInvalidArgument);
  EXPECT_NE(msg.find("rope_theta must be a positive number"), std::string::npos) << msg;
  EXPECT_EQ(code_of(base + R"(, "rope_theta": -10000})"), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of(base + R"(, "rms_norm_eps": -1e-6})", &msg), ErrorCode::kInvalidArgument);
  EXPECT_NE(msg.find("rms_norm_eps"), std::string::npos) << msg;
  const std::string mistral = R"({"architectures": ["MistralForCausalLM"], "vocab_size": 10, "hidden_size": 8,
      "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2)";
  EXPECT_EQ(code_of(mistral + R"(, "sliding_window": 0})", &msg), ErrorCode::kInvalidArgument);
  EXPECT_NE(msg.find("sliding_window must be positive"), std::string::npos) << msg;
  EXPECT_EQ(code_of(mistral + R"(, "sliding_window": 4096})"), ErrorCode::kSentinel);
  EXPECT_EQ(code_of(mistral + R"(, "sliding_window": null})"), ErrorCode::kSentinel);
  // Wrong JSON types name the file and the key instead of surfacing a JSON library message.
  EXPECT_EQ(code_of(base + R"(, "hidden_act": 5})", &msg), ErrorCode::kInvalidArgument);
  EXPECT_NE(msg.find("test.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'hidden_act' must be a string"), std::string::npos) << msg;
  const std::string gpt2 = R"({"architectures": ["GPT2LMHeadModel"], "vocab_size": 10, "n_embd": 8, "n_layer": 1,
      "n_head": 2)";
  EXPECT_EQ(code_of(gpt2 + "}"), ErrorCode::kSentinel);
  EXPECT_EQ(code_of(gpt2 + R"(, "activation_function": ["gelu"]})", &msg), ErrorCode::kInvalidArgument);
  EXPECT_NE(msg.find("activation_function"), std::string::npos) << msg;
  EXPECT_EQ(code_of(gpt2 + R"(, "layer_norm_epsilon": -1})", &msg), ErrorCode::kInvalidArgument);
  // Found by fuzz/config_fuzz: a huge n_embd overflowed the default n_inner (4 × n_embd).
  EXPECT_EQ(
      code_of(R"({"architectures": ["GPT2LMHeadModel"], "vocab_size": 1024, "n_embd": 6184467440737022452})", &msg),
      ErrorCode::kInvalidArgument);
  EXPECT_NE(msg.find("n_embd (6184467440737022452) must be between 1 and"), std::string::npos) << msg;
  EXPECT_EQ(code_of(base + R"(, "num_hidden_layers": 1e30})", &msg), ErrorCode::kInvalidArgument);
  EXPECT_NE(msg.find("num_hidden_layers"), std::string::npos) << msg;
  EXPECT_EQ(code_of(base + R"(, "rope_theta": 1e999})", &msg), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of(base + R"(, "rope_parameters": {"rope_type": "default", "rope_theta": -1}})", &msg),
            ErrorCode::kInvalidArgument);
  EXPECT_NE(msg.find("rope_theta"), std::string::npos) << msg;
  EXPECT_EQ(code_of(base + R"(, "rope_scaling": {"rope_type": "llama3", "factor": 8, "low_freq_factor": -1}})", &msg),
            ErrorCode::kInvalidArgument);
  EXPECT_NE(msg.find("low_freq_factor"), std::string::npos) << msg;
  EXPECT_EQ(code_of(base + R"(, "num_attention_heads": 3, "num_key_value_heads": 3})", &msg),
            ErrorCode::kInvalidArgument);
  EXPECT_NE(msg.find("not divisible"), std::string::npos) << msg;
  EXPECT_EQ(code_of(base + R"(, "head_dim": 3})", &msg), ErrorCode::kInvalidArgument);
  EXPECT_NE(msg.find("head_dim"), std::string::npos) << msg;
}

TEST(ModelDir, MissingPiecesAreClearErrors) {
  auto code_of = [](const fs::path& dir, std::string* msg = nullptr) {
    try {
      Model::load(dir);
    } catch (const Error& e) {
      if (msg) *msg = e.what();
      return e.code();
    }
    return ErrorCode::kSentinel;
  };
  std::string msg;
  auto dir = fresh_dir("modeldir");
  EXPECT_EQ(code_of(dir / "nope"), ErrorCode::kNotFound);
  EXPECT_EQ(code_of(dir, &msg), ErrorCode::kNotFound);
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
  fs::copy_file(test::hf_model("llama") / "config.json", dir / "config.json");
  EXPECT_EQ(code_of(dir, &msg), ErrorCode::kNotFound);
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
  // Weights of another model: shapes disagree with config.json.
  fs::copy_file(test::hf_model("qwen3") / "model.safetensors", dir / "model.safetensors");
  EXPECT_EQ(code_of(dir, &msg), ErrorCode::kInvalidArgument);
  EXPECT_NE(msg.find("shape"), std::string::npos) << msg;
  // Untied config without lm_head.
  fs::remove(dir / "model.safetensors");
  fs::remove(dir / "config.json");
  fs::copy_file(test::hf_model("llama_untied_noscale") / "config.json", dir / "config.json");
  fs::copy_file(test::hf_model("llama") / "model.safetensors", dir / "model.safetensors");
  EXPECT_EQ(code_of(dir, &msg), ErrorCode::kInvalidArgument);
  EXPECT_NE(msg.find("lm_head"), std::string::npos) << msg;
  fs::remove_all(dir);
}

TEST(ModelDir, ShardedWeightsLoadLikeOneFile) {
  auto src = Model::load(test::hf_model("llama_untied_noscale"));
  auto dir = fresh_dir("sharded");
  fs::copy_file(test::hf_model("llama_untied_noscale") / "config.json", dir / "config.json");
  auto named = src->named_weights();
  std::vector<std::pair<std::string, at::Tensor>> a(named.begin(), named.begin() + named.size() / 2);
  std::vector<std::pair<std::string, at::Tensor>> b(named.begin() + named.size() / 2, named.end());
  save_safetensors(dir / "model-00001-of-00002.safetensors", a);
  save_safetensors(dir / "model-00002-of-00002.safetensors", b);
  nlohmann::json index;
  for (const auto& [n, t] : a) index["weight_map"][n] = "model-00001-of-00002.safetensors";
  for (const auto& [n, t] : b) index["weight_map"][n] = "model-00002-of-00002.safetensors";
  std::ofstream(dir / "model.safetensors.index.json") << index.dump();
  auto sharded = Model::load(dir);
  at::Tensor ids = at::tensor({1, 2, 3, 4, 5}, at::kLong);
  EXPECT_TRUE(sharded->forward_full(ids).equal(src->forward_full(ids)));
  // An index that points at a shard lacking the tensor.
  index["weight_map"][a[0].first] = "model-00002-of-00002.safetensors";
  std::ofstream(dir / "model.safetensors.index.json") << index.dump();
  EXPECT_THROW(Model::load(dir), Error);
  fs::remove_all(dir);
}

TEST(ModelDir, SaveThenLoadGivesIdenticalLogits) {
  for (const std::string name : {"llama", "qwen2", "qwen3", "llama_rm_multi"}) {
    auto src = Model::load(test::hf_model(name));
    auto dir = fresh_dir("save_" + name);
    src->save(dir);
    auto back = Model::load(dir);
    at::Tensor ids = at::tensor({3, 1, 4, 1, 5, 9}, at::kLong);
    EXPECT_TRUE(back->forward_full(ids).equal(src->forward_full(ids))) << name;
    EXPECT_EQ(back->n_params(), src->n_params()) << name;
    fs::remove_all(dir);
  }
}

}  // namespace
