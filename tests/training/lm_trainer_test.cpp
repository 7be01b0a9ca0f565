// The LM trainer: one step's loss and every gradient against a naive plain-torch twin of the forward pass, learning
// on a tiny corpus, save/load identity, resume = uninterrupted run, and the bad-input paths.
#include "palign/training/lm_trainer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "palign/base/error.h"
#include "palign/runtime/config.h"
#include "palign/runtime/model.h"
#include "palign/runtime/safetensors.h"
#include "palign/runtime/tokenizer.h"
#include "temp_dir.h"

using namespace palign;
using namespace palign::runtime;
using namespace palign::training;
namespace fs = std::filesystem;

namespace {

fs::path data_dir() { return PALIGN_TEST_DATA_DIR; }
fs::path tokenizer_dir() { return data_dir() / "hf" / "tokenizers" / "gpt2_bpe"; }

using palign::test::fresh_dir;

// A tiny repetitive corpus: easy to learn, so the loss must fall far below the unigram entropy.
fs::path tiny_corpus(const fs::path& dir) {
  std::ofstream out(dir / "tiny.jsonl");
  const char* lines[] = {"the cat sat on the mat", "the dog sat on the log", "a cat and a dog",
                         "the mat is red", "the log is brown"};
  for (int i = 0; i < 200; ++i)
    out << nlohmann::json{{"text", lines[i % 5]}, {"split", i % 10 == 0 ? "valid" : "train"}}.dump() << "\n";
  return dir / "tiny.jsonl";
}

LmTrainOptions tiny_options() {
  LmTrainOptions o;
  o.layers = 2;
  o.d_model = 32;
  o.heads = 4;
  o.kv_heads = 2;
  o.ctx = 16;
  o.steps = 200;
  o.batch = 8;
  o.lr = 1e-2;
  o.min_lr = 1e-3;
  o.warmup = 5;
  o.eval_every = 20;
  o.eval_batches = 2;
  o.checkpoint_every = 20;
  o.progress = false;
  return o;
}

// Plain-torch Llama forward: explicit RoPE with rotate_half, repeated KV heads, explicit causal softmax.
at::Tensor naive_llama_logits(const std::map<std::string, at::Tensor>& w, const ModelConfig& c, const at::Tensor& ids) {
  const int64_t B = ids.size(0), T = ids.size(1), H = c.n_head, Hkv = c.n_kv_head, hd = c.head_dim;
  auto rms = [&](const at::Tensor& x, const at::Tensor& g) {
    return g * (x / at::sqrt(x.pow(2).mean(-1, true) + c.norm_eps));
  };
  at::Tensor inv_freq = 1.0 / at::pow(c.rope.theta, at::arange(0, hd, 2).to(at::kFloat) / hd);
  at::Tensor ang = at::outer(at::arange(T).to(at::kFloat), inv_freq);
  at::Tensor cos = at::cat({ang, ang}, -1).cos(), sin = at::cat({ang, ang}, -1).sin();
  auto rope = [&](const at::Tensor& x) {
    at::Tensor x1 = x.narrow(-1, 0, hd / 2), x2 = x.narrow(-1, hd / 2, hd / 2);
    return x * cos + at::cat({-x2, x1}, -1) * sin;
  };
  at::Tensor x = w.at("model.embed_tokens.weight").index_select(0, ids.reshape(-1)).view({B, T, -1});
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    at::Tensor h = rms(x, w.at(p + "input_layernorm.weight"));
    at::Tensor q = at::matmul(h, w.at(p + "self_attn.q_proj.weight").t()).view({B, T, H, hd}).transpose(1, 2);
    at::Tensor k = at::matmul(h, w.at(p + "self_attn.k_proj.weight").t()).view({B, T, Hkv, hd}).transpose(1, 2);
    at::Tensor v = at::matmul(h, w.at(p + "self_attn.v_proj.weight").t()).view({B, T, Hkv, hd}).transpose(1, 2);
    q = rope(q);
    k = rope(k).repeat_interleave(H / Hkv, 1);
    v = v.repeat_interleave(H / Hkv, 1);
    at::Tensor s = at::matmul(q, k.transpose(-1, -2)) / std::sqrt(double(hd));
    s = s.masked_fill(at::ones({T, T}, at::kBool).triu(1), -INFINITY);
    at::Tensor a = at::matmul(s.softmax(-1), v).transpose(1, 2).reshape({B, T, H * hd});
    x = x + at::matmul(a, w.at(p + "self_attn.o_proj.weight").t());
    h = rms(x, w.at(p + "post_attention_layernorm.weight"));
    at::Tensor g = at::matmul(h, w.at(p + "mlp.gate_proj.weight").t());
    at::Tensor u = at::matmul(h, w.at(p + "mlp.up_proj.weight").t());
    x = x + at::matmul(g * g.sigmoid() * u, w.at(p + "mlp.down_proj.weight").t());
  }
  x = rms(x, w.at("model.norm.weight"));
  const bool untied = w.count("lm_head.weight") != 0;
  return at::matmul(x, w.at(untied ? "lm_head.weight" : "model.embed_tokens.weight").t());
}

TEST(LmTrainer, OneStepLossAndAllGradientsMatchANaiveTwin) {
  ModelConfig c;
  c.architecture = "LlamaForCausalLM";
  c.vocab_size = 50;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_kv_head = 2;
  c.head_dim = 8;
  c.max_position = 32;
  c.tie_word_embeddings = true;
  torch::manual_seed(3);
  std::map<std::string, at::Tensor> a, b;
  auto add = [&](const std::string& n, std::vector<int64_t> shape, bool norm = false) {
    at::Tensor t = norm ? 1 + 0.1 * at::randn(shape) : 0.2 * at::randn(shape);
    a[n] = t.clone().set_requires_grad(true);
    b[n] = t.clone().set_requires_grad(true);
  };
  add("model.embed_tokens.weight", {50, 32});
  add("model.norm.weight", {32}, true);
  for (int i = 0; i < 2; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    add(p + "input_layernorm.weight", {32}, true);
    add(p + "post_attention_layernorm.weight", {32}, true);
    add(p + "self_attn.q_proj.weight", {32, 32});
    add(p + "self_attn.k_proj.weight", {16, 32});
    add(p + "self_attn.v_proj.weight", {16, 32});
    add(p + "self_attn.o_proj.weight", {32, 32});
    add(p + "mlp.gate_proj.weight", {48, 32});
    add(p + "mlp.up_proj.weight", {48, 32});
    add(p + "mlp.down_proj.weight", {32, 48});
  }
  auto model = Model::from_weights(c, a);
  at::Tensor x = at::randint(50, {3, 12}, at::kLong), y = at::randint(50, {3, 12}, at::kLong);
  at::Tensor fast = at::cross_entropy_loss(model->forward_full(x).reshape({-1, 50}), y.reshape({-1}));
  at::Tensor naive = at::cross_entropy_loss(naive_llama_logits(b, c, x).reshape({-1, 50}), y.reshape({-1}));
  fast.backward();
  naive.backward();
  const double loss_diff = std::abs(fast.item<double>() - naive.item<double>());
  double grad_diff = 0;
  for (auto& [name, t] : a) {
    ASSERT_TRUE(t.grad().defined()) << name;
    grad_diff = std::max(grad_diff, (t.grad() - b[name].grad()).abs().max().item<double>());
  }
  std::printf("one step: loss %.6f vs naive %.6f (diff %.3g); max-abs gradient diff over %zu tensors = %.3g\n",
              fast.item<double>(), naive.item<double>(), loss_diff, a.size(), grad_diff);
  EXPECT_LE(loss_diff, 1e-5);
  EXPECT_LE(grad_diff, 1e-5);
}

TEST(LmTrainer, LearnsATinyCorpusAndSavesALoadableModel) {
  auto dir = fresh_dir("learn");
  auto tok = Tokenizer::from_dir(tokenizer_dir());
  ASSERT_TRUE(tok.eos_id().has_value());
  auto data = tokenize_corpus(tiny_corpus(dir), tok, *tok.eos_id());
  // Unigram entropy of the training stream, in nats.
  std::map<int64_t, double> counts;
  for (int64_t id : data.train) counts[id] += 1;
  double entropy = 0;
  for (auto& [id, n] : counts) {
    const double p = n / data.train.size();
    entropy -= p * std::log(p);
  }
  auto report = train_lm(data, tokenizer_dir(), dir / "model", tiny_options());
  const double final_valid = report.valid_loss.back().second;
  std::printf("tiny corpus: unigram entropy %.3f nats, first loss %.3f, final valid loss %.3f, %.0f tok/s\n", entropy,
              report.train_loss.front().second, final_valid, report.tokens_per_second);
  EXPECT_LT(final_valid, 0.5 * entropy);
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"})
    EXPECT_TRUE(fs::exists(dir / "model" / f)) << f;
  // The saved directory, loaded by the runtime, gives the logits of the plain-torch twin run on the tensors read
  // straight from model.safetensors with the saved config.json: what was written is the model that was trained.
  auto loaded = Model::load(dir / "model");
  const auto config = ModelConfig::load(dir / "model" / "config.json");
  const auto file = SafetensorsFile::open(dir / "model" / "model.safetensors");
  std::map<std::string, at::Tensor> stored;
  for (const auto& [name, info] : file.tensors()) stored[name] = file.get_f32(name);
  EXPECT_EQ(config.n_layer, tiny_options().layers);
  EXPECT_EQ(config.hidden_size, tiny_options().d_model);
  at::Tensor ids = at::tensor({5, 6, 7, 8, 9}, at::kLong).unsqueeze(0);
  const double saved_diff =
      (loaded->forward_full(ids) - naive_llama_logits(stored, config, ids)).abs().max().item<double>();
  std::printf("saved model vs naive twin on the stored tensors: max-abs-diff = %.3g\n", saved_diff);
  EXPECT_LE(saved_diff, 1e-4);
  auto ppl = eval_perplexity(dir / "model", dir / "tiny.jsonl", "valid");
  std::printf("valid perplexity %.3f over %ld tokens\n", ppl.perplexity, static_cast<long>(ppl.tokens));
  EXPECT_LT(ppl.perplexity, std::exp(entropy));
  fs::remove_all(dir);
}

TEST(LmTrainer, ResumeContinuesTheSameLossCurve) {
  auto dir = fresh_dir("resume");
  auto tok = Tokenizer::from_dir(tokenizer_dir());
  auto data = tokenize_corpus(tiny_corpus(dir), tok, *tok.eos_id());
  LmTrainOptions o = tiny_options();
  o.steps = 40;
  auto full = train_lm(data, tokenizer_dir(), dir / "full", o);
  // The same run, stopped after 20 steps (its last checkpoint), then resumed to 40.
  LmTrainOptions first = o;
  first.resume = false;
  auto part = train_lm(data, tokenizer_dir(), dir / "part", [&] {
    LmTrainOptions p = first;
    p.max_minutes = 1e-9;  // stops after its first step with a checkpoint...
    return p;
  }());
  EXPECT_EQ(part.last_step, 1);
  // --stop-at ends the same schedule early with a checkpoint; resuming without it finishes the schedule.
  LmTrainOptions stop = o;
  stop.stop_at = 10;
  auto stopped = train_lm(data, tokenizer_dir(), dir / "part", stop);
  EXPECT_EQ(stopped.first_step, 1);
  EXPECT_EQ(stopped.last_step, 10);
  auto resumed = train_lm(data, tokenizer_dir(), dir / "part", o);
  EXPECT_EQ(resumed.first_step, 10);
  ASSERT_EQ(resumed.train_loss.size(), full.train_loss.size());
  double worst = 0;
  for (size_t i = 0; i < full.train_loss.size(); ++i)
    worst = std::max(worst, std::abs(resumed.train_loss[i].second - full.train_loss[i].second));
  std::printf("resumed vs uninterrupted loss curve: max-abs-diff = %.3g over %zu steps\n", worst,
              full.train_loss.size());
  EXPECT_LE(worst, 1e-4);
  fs::remove_all(dir);
}

TEST(LmTrainer, BadInputsAreClearErrors) {
  auto dir = fresh_dir("bad");
  auto tok = Tokenizer::from_dir(tokenizer_dir());
  std::ofstream(dir / "empty.jsonl") << "\n";
  EXPECT_THROW(tokenize_corpus(dir / "empty.jsonl", tok, 0), Error);
  EXPECT_THROW(tokenize_corpus(dir / "missing.jsonl", tok, 0), Error);
  std::ofstream(dir / "bad.jsonl") << "{\"text\": 1}\n";
  EXPECT_THROW(tokenize_corpus(dir / "bad.jsonl", tok, 0), Error);
  auto data = tokenize_corpus(tiny_corpus(dir), tok, *tok.eos_id());
  LmTrainOptions o = tiny_options();
  o.ctx = 100000;  // beyond what the model (and the corpus) supports
  EXPECT_THROW(train_lm(data, tokenizer_dir(), dir / "m", o), Error);
  o = tiny_options();
  o.heads = 3;
  EXPECT_THROW(train_lm(data, tokenizer_dir(), dir / "m", o), Error);
  TokenStreams small;
  small.train = {1, 2, 3};
  EXPECT_THROW(train_lm(small, tokenizer_dir(), dir / "m", tiny_options()), Error);
  if (::geteuid() != 0) {  // root can write anywhere
    fs::create_directories(dir / "ro");
    fs::permissions(dir / "ro", fs::perms::owner_read | fs::perms::owner_exec);
    EXPECT_THROW(train_lm(data, tokenizer_dir(), dir / "ro" / "m", tiny_options()), Error);
  }
  EXPECT_THROW(train_lm(data, tokenizer_dir(), "/proc/palign_cannot_write_here", tiny_options()), Error);
  // A checkpoint of another architecture is refused, not silently overwritten.
  o = tiny_options();
  o.steps = 2;
  train_lm(data, tokenizer_dir(), dir / "arch", o);
  o.layers = 3;
  try {
    train_lm(data, tokenizer_dir(), dir / "arch", o);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("architecture"), std::string::npos) << e.what();
  }
  if (fs::exists(dir / "ro")) fs::permissions(dir / "ro", fs::perms::owner_all, fs::perm_options::replace);
  fs::remove_all(dir);
}

TEST(LmTrainer, AnInterruptedCheckpointWriteLeavesTheLastCheckpointIntact) {
  auto dir = fresh_dir("interrupt");
  auto tok = Tokenizer::from_dir(tokenizer_dir());
  auto data = tokenize_corpus(tiny_corpus(dir), tok, *tok.eos_id());
  LmTrainOptions o = tiny_options();
  o.steps = 20;
  train_lm(data, tokenizer_dir(), dir / "m", o);
  // Simulate a crash mid-write: a half-written checkpoint.tmp beside the complete checkpoint.
  fs::create_directories(dir / "m" / "checkpoint.tmp");
  std::ofstream(dir / "m" / "checkpoint.tmp" / "model.safetensors") << "garbage";
  o.steps = 30;
  auto resumed = train_lm(data, tokenizer_dir(), dir / "m", o);
  EXPECT_EQ(resumed.first_step, 20);
  EXPECT_EQ(resumed.last_step, 30);
  fs::remove_all(dir);
}

// A damaged LM checkpoint is a user error naming the file; a save killed between its two renames is recovered (the
// newest complete copy wins) instead of silently restarting from step 0.
TEST(LmTrainer, DamagedCheckpointsAreRefusedAndAnInterruptedSaveIsRecovered) {
  auto dir = fresh_dir("damaged");
  auto tok = Tokenizer::from_dir(tokenizer_dir());
  auto data = tokenize_corpus(tiny_corpus(dir), tok, *tok.eos_id());
  LmTrainOptions o = tiny_options();
  o.steps = 20;
  o.checkpoint_every = 10;
  train_lm(data, tokenizer_dir(), dir / "m", o);
  const fs::path ckpt = dir / "m" / "checkpoint", backup = dir / "backup";
  fs::copy(ckpt, backup, fs::copy_options::recursive);
  auto restore = [&] {
    fs::remove_all(ckpt);
    fs::copy(backup, ckpt, fs::copy_options::recursive);
  };
  auto edit_state = [&](const fs::path& state, const char* key, const nlohmann::json& value) {
    nlohmann::json j = nlohmann::json::parse(std::ifstream(state));
    j[key] = value;
    std::ofstream(state) << j.dump();
  };
  o.steps = 30;
  auto message_of = [&] {
    try {
      train_lm(data, tokenizer_dir(), dir / "m", o);
    } catch (const Error& e) {
      std::printf("  expected error: %s\n", e.what());
      return std::make_pair(e.code(), std::string(e.what()));
    }
    return std::make_pair(ErrorCode::kSentinel, std::string());
  };
  // "next_step": -100 trained from a step before the schedule and wrote the model with no error.
  for (const int64_t step : {int64_t{-100}, int64_t{1000000000000}}) {
    edit_state(ckpt / "state.json", "next_step", step);
    const auto [code, msg] = message_of();
    EXPECT_EQ(code, ErrorCode::kInvalidArgument);
    EXPECT_NE(msg.find("next_step"), std::string::npos) << msg;
    restore();
  }
  edit_state(ckpt / "state.json", "train_loss", "none");
  EXPECT_EQ(message_of().first, ErrorCode::kInvalidArgument);
  restore();
  // A truncated optimizer.pt was libtorch's internal error.
  fs::resize_file(ckpt / "optimizer.pt", fs::file_size(ckpt / "optimizer.pt") / 2);
  {
    const auto [code, msg] = message_of();
    EXPECT_EQ(code, ErrorCode::kInvalidArgument);
    EXPECT_NE(msg.find("optimizer.pt"), std::string::npos) << msg;
  }
  restore();
  // Killed between the renames: checkpoint is gone, checkpoint.old holds the older one and checkpoint.tmp the newer
  // one (step 20). The run resumes from the newer.
  fs::copy(ckpt, dir / "m" / "checkpoint.old", fs::copy_options::recursive);
  edit_state(dir / "m" / "checkpoint.old" / "state.json", "next_step", 10);
  fs::rename(ckpt, dir / "m" / "checkpoint.tmp");
  auto resumed = train_lm(data, tokenizer_dir(), dir / "m", o);
  EXPECT_EQ(resumed.first_step, 20);
  EXPECT_EQ(resumed.last_step, 30);
  EXPECT_TRUE(fs::exists(ckpt / "state.json"));
  EXPECT_FALSE(fs::exists(dir / "m" / "checkpoint.tmp"));
  // Only checkpoint.old left: the run resumes from it.
  fs::rename(ckpt, dir / "m" / "checkpoint.old");
  o.steps = 40;
  EXPECT_EQ(train_lm(data, tokenizer_dir(), dir / "m", o).first_step, 30);
  fs::remove_all(dir);
}

}  // namespace
