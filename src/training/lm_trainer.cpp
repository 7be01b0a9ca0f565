// Language-model pretraining (see lm_trainer.h). The network is runtime::Model built from leaf tensors that require
// grad; AdamW (Loshchilov & Hutter 2019) updates them in place, so the saved model is exactly what was trained.
#include "palign/training/lm_trainer.h"

#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "checkpoint_dir.h"
#include "palign/base/error.h"
#include "palign/base/progress.h"
#include "palign/base/timer.h"
#include "palign/runtime/model.h"
#include "palign/runtime/safetensors.h"
#include "palign/runtime/tokenizer.h"
#include "palign/training/corpus.h"

namespace palign::training {

namespace fs = std::filesystem;
using nlohmann::json;
using runtime::Model;
using runtime::ModelConfig;

namespace {
constexpr const char* kCheckpointFormat = "palign.lm_checkpoint";
constexpr int kCheckpointVersion = 1;
}  // namespace

TokenStreams tokenize_corpus(const fs::path& jsonl, const runtime::Tokenizer& tokenizer, int64_t end_of_text_id) {
  TokenStreams out;
  auto append = [&](const std::vector<std::string>& texts, std::vector<int64_t>& dst) {
    for (const auto& text : texts) {
      for (int32_t id : tokenizer.encode(text, /*add_special=*/false)) dst.push_back(id);
      dst.push_back(end_of_text_id);
      ++out.n_records;
    }
  };
  append(read_corpus_texts(jsonl, "train"), out.train);
  append(read_corpus_texts(jsonl, "valid", /*allow_empty=*/true), out.valid);
  return out;
}

std::string LmTrainOptions::validate() const {
  if (layers < 1 || d_model < 8 || heads < 1 || kv_heads < 1) return "layers, d-model, heads and kv-heads must be positive";
  if (d_model % heads != 0) return "d-model must be divisible by heads";
  if (heads % kv_heads != 0) return "heads must be a multiple of kv-heads";
  if ((d_model / heads) % 2 != 0) return "d-model / heads (the head size) must be even for RoPE";
  if (ctx < 2 || ctx > 8192) return "ctx must be in [2, 8192]";
  if (steps < 1 || batch < 1 || grad_accum < 1) return "steps, batch and grad-accum must be >= 1";
  if (!(lr > 0) || min_lr < 0 || min_lr > lr) return "lr must be > 0 and 0 <= min-lr <= lr";
  if (warmup < 0) return "warmup must be >= 0";
  if (weight_decay < 0 || clip < 0) return "weight-decay and clip must be >= 0";
  if (!(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1)) return "betas must be in [0, 1)";
  if (stop_at < 0) return "stop-at must be >= 0";
  if (eval_every < 1 || eval_batches < 1 || checkpoint_every < 1) return "eval-every, eval-batches and checkpoint-every must be >= 1";
  return {};
}

namespace {

ModelConfig make_config(const LmTrainOptions& o, int64_t vocab, int64_t eos, std::optional<int64_t> pad) {
  ModelConfig c;
  c.architecture = "LlamaForCausalLM";
  c.arch = runtime::Arch::kLlama;
  c.vocab_size = vocab;
  c.hidden_size = o.d_model;
  c.intermediate_size = o.ffn > 0 ? o.ffn : (8 * o.d_model / 3 + 31) / 32 * 32;
  c.n_layer = o.layers;
  c.n_head = o.heads;
  c.n_kv_head = o.kv_heads;
  c.head_dim = o.d_model / o.heads;
  c.max_position = o.max_position();
  c.norm_eps = 1e-5;
  c.rope.theta = 10000.0;
  c.tie_word_embeddings = true;
  c.bos_token_id = eos;
  c.eos_token_ids = {eos};
  c.pad_token_id = pad;
  return c;
}

// The batch of (inputs, targets) for one micro-step: seeded by (seed, step, micro) only, so a resumed run sees
// exactly the batches an uninterrupted one would.
std::pair<at::Tensor, at::Tensor> sample_batch(const std::vector<int64_t>& stream, int64_t batch, int64_t ctx,
                                               uint64_t seed, int64_t step, int64_t micro) {
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(step) * 1000003ull +
                      static_cast<uint64_t>(micro));
  const uint64_t span = stream.size() - ctx;  // windows of ctx + 1 tokens
  at::Tensor x = at::empty({batch, ctx}, at::kLong), y = at::empty({batch, ctx}, at::kLong);
  auto* xp = x.data_ptr<int64_t>();
  auto* yp = y.data_ptr<int64_t>();
  for (int64_t b = 0; b < batch; ++b) {
    const uint64_t off = rng() % span;
    for (int64_t t = 0; t < ctx; ++t) {
      xp[b * ctx + t] = stream[off + t];
      yp[b * ctx + t] = stream[off + t + 1];
    }
  }
  return {x, y};
}

double lr_at(const LmTrainOptions& o, int64_t step) {
  if (step < o.warmup) return o.lr * static_cast<double>(step + 1) / static_cast<double>(o.warmup);
  const double progress = o.steps > o.warmup ? double(step - o.warmup) / double(o.steps - o.warmup) : 1.0;
  return o.min_lr + 0.5 * (o.lr - o.min_lr) * (1.0 + std::cos(M_PI * std::min(1.0, progress)));
}

at::Tensor lm_loss(const Model& model, const at::Tensor& x, const at::Tensor& y) {
  at::Tensor logits = model.forward_full(x);  // [B, T, V]
  return at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}), y.reshape({-1}));
}

double validation_loss(const Model& model, const std::vector<int64_t>& stream, const LmTrainOptions& o) {
  if (stream.size() <= static_cast<size_t>(o.ctx) + 1) return std::nan("");
  at::NoGradGuard no_grad;
  // Evenly spaced windows: the same every time, so losses are comparable across steps.
  const int64_t n = o.eval_batches * o.batch;
  const int64_t span = static_cast<int64_t>(stream.size()) - o.ctx - 1;
  double total = 0;
  for (int64_t b0 = 0; b0 < n; b0 += o.batch) {
    at::Tensor x = at::empty({o.batch, o.ctx}, at::kLong), y = at::empty({o.batch, o.ctx}, at::kLong);
    for (int64_t b = 0; b < o.batch; ++b) {
      const int64_t off = span * (b0 + b) / n;
      x[b] = at::tensor(std::vector<int64_t>(stream.begin() + off, stream.begin() + off + o.ctx), at::kLong);
      y[b] = at::tensor(std::vector<int64_t>(stream.begin() + off + 1, stream.begin() + off + o.ctx + 1), at::kLong);
    }
    total += lm_loss(model, x, y).item<double>();
  }
  return total / o.eval_batches;
}

json arch_json(const LmTrainOptions& o) {
  return {{"layers", o.layers}, {"d_model", o.d_model}, {"heads", o.heads},
          {"kv_heads", o.kv_heads}, {"ffn", o.ffn}, {"ctx", o.ctx}};
}

void write_json(const fs::path& p, const json& j) {
  std::ofstream out(p, std::ios::trunc);
  PALIGN_CHECK(out.good(), ErrorCode::kIo, "[training.lm] cannot write ", p.string());
  out << j.dump(2) << "\n";
  PALIGN_CHECK(out.good(), ErrorCode::kIo, "[training.lm] writing ", p.string(), " failed");
}

// Writes out/checkpoint atomically (detail::write_checkpoint_dir): an interruption at any point leaves the last
// complete checkpoint, which the next run finds.
void save_checkpoint(const fs::path& out, const Model& model, torch::optim::AdamW& opt, const LmTrainOptions& o,
                     int64_t next_step, const LmTrainReport& report) {
  detail::write_checkpoint_dir(
      out / "checkpoint",
      [&](const fs::path& tmp) {
        runtime::save_safetensors(tmp / "model.safetensors", model.named_weights());
        torch::save(opt, (tmp / "optimizer.pt").string());
        write_json(tmp / "state.json", {{"format", kCheckpointFormat},
                                        {"version", kCheckpointVersion},
                                        {"next_step", next_step},
                                        {"seed", o.seed},
                                        {"steps", o.steps},
                                        {"arch", arch_json(o)},
                                        {"train_loss", report.train_loss},
                                        {"valid_loss", report.valid_loss}});
      },
      "training.lm");
}

void write_model_dir(const fs::path& out, const Model& model, const fs::path& tokenizer_dir,
                     const runtime::Tokenizer& tok, int64_t eos) {
  model.save(out);
  if (fs::absolute(tokenizer_dir) != fs::absolute(out)) {
    fs::copy_file(tokenizer_dir / "tokenizer.json", out / "tokenizer.json", fs::copy_options::overwrite_existing);
    if (fs::exists(tokenizer_dir / "tokenizer_config.json"))
      fs::copy_file(tokenizer_dir / "tokenizer_config.json", out / "tokenizer_config.json",
                    fs::copy_options::overwrite_existing);
  }
  json gen{{"bos_token_id", eos}, {"eos_token_id", eos}, {"do_sample", true}, {"temperature", 0.8}, {"top_p", 0.95}};
  if (tok.pad_id()) gen["pad_token_id"] = *tok.pad_id();
  write_json(out / "generation_config.json", gen);
}

}  // namespace

std::map<std::string, at::Tensor> init_llama_weights(const ModelConfig& c, uint64_t seed, bool requires_grad) {
  torch::manual_seed(seed);
  std::map<std::string, at::Tensor> w;
  const double std = 0.02, resid_std = 0.02 / std::sqrt(2.0 * c.n_layer);
  auto normal = [&](std::vector<int64_t> shape, double s) { return (at::randn(shape) * s).set_requires_grad(requires_grad); };
  auto ones = [&](int64_t n) { return at::ones({n}).set_requires_grad(requires_grad); };
  const int64_t D = c.hidden_size, F = c.intermediate_size, q = c.n_head * c.head_dim, kv = c.n_kv_head * c.head_dim;
  w["model.embed_tokens.weight"] = normal({c.vocab_size, D}, std);
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    w[p + "input_layernorm.weight"] = ones(D);
    w[p + "post_attention_layernorm.weight"] = ones(D);
    w[p + "self_attn.q_proj.weight"] = normal({q, D}, std);
    w[p + "self_attn.k_proj.weight"] = normal({kv, D}, std);
    w[p + "self_attn.v_proj.weight"] = normal({kv, D}, std);
    w[p + "self_attn.o_proj.weight"] = normal({D, q}, resid_std);
    w[p + "mlp.gate_proj.weight"] = normal({F, D}, std);
    w[p + "mlp.up_proj.weight"] = normal({F, D}, std);
    w[p + "mlp.down_proj.weight"] = normal({D, F}, resid_std);
  }
  w["model.norm.weight"] = ones(D);
  return w;
}

LmTrainReport train_lm(const TokenStreams& data, const fs::path& tokenizer_dir, const fs::path& out_dir,
                       const LmTrainOptions& o) {
  const std::string err = o.validate();
  PALIGN_CHECK(err.empty(), ErrorCode::kInvalidArgument, "[training.lm] ", err);
  auto tok = runtime::Tokenizer::from_dir(tokenizer_dir);
  PALIGN_CHECK(tok.eos_id().has_value(), ErrorCode::kInvalidArgument, "[training.lm] the tokenizer in ",
               tokenizer_dir.string(), " has no end-of-text token; train one with `palign train tokenizer`");
  const int64_t eos = *tok.eos_id();
  PALIGN_CHECK(data.train.size() > static_cast<size_t>(o.ctx) + 1, ErrorCode::kInvalidArgument,
               "[training.lm] the training split has ", data.train.size(), " tokens, fewer than one window of --ctx ",
               o.ctx, " + 1; use a smaller --ctx or more data");
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  PALIGN_CHECK(!ec && fs::is_directory(out_dir), ErrorCode::kIo, "[training.lm] cannot create ", out_dir.string(),
               ": ", ec.message());
  {
    std::ofstream probe(out_dir / ".write_test");
    PALIGN_CHECK(probe.good(), ErrorCode::kIo, "[training.lm] ", out_dir.string(), " is not writable");
  }
  fs::remove(out_dir / ".write_test");

  const ModelConfig config = make_config(o, tok.vocab_size(), eos, tok.pad_id());
  auto weights = init_llama_weights(config, o.seed);
  std::vector<at::Tensor> decay, no_decay;
  for (auto& [name, t] : weights) (t.dim() >= 2 ? decay : no_decay).push_back(t);
  auto model = Model::from_weights(config, weights);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                 torch::optim::AdamWOptions(o.lr).betas({o.beta1, o.beta2}).weight_decay(o.weight_decay)));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(
                                    torch::optim::AdamWOptions(o.lr).betas({o.beta1, o.beta2}).weight_decay(0.0)));
  torch::optim::AdamW opt(std::move(groups));

  LmTrainReport report;
  report.n_params = model->n_params();
  int64_t step = 0;
  const fs::path ckpt = out_dir / "checkpoint";
  if (o.resume && detail::recover_checkpoint_dir(ckpt, "training.lm")) {
    const fs::path state_file = ckpt / "state.json";
    const std::string start_over = "; delete " + ckpt.string() + " to start over (or pass --no-resume)";
    json state;
    try {
      std::ifstream in(state_file);
      state = json::parse(in);
    } catch (const json::exception&) {
      PALIGN_THROW(ErrorCode::kInvalidArgument, "[training.lm] ", state_file.string(), " is corrupt", start_over);
    }
    PALIGN_CHECK(state.is_object() && state.value("format", "") == kCheckpointFormat &&
                     state.value("version", 0) == kCheckpointVersion,
                 ErrorCode::kInvalidArgument, "[training.lm] ", ckpt.string(),
                 " is not a palign LM checkpoint of version ", kCheckpointVersion,
                 "; delete it or pass another --out (it is rewritten by `palign train lm`)");
    PALIGN_CHECK(state["arch"] == arch_json(o), ErrorCode::kInvalidArgument, "[training.lm] the checkpoint in ",
                 ckpt.string(), " was trained with ", state["arch"].dump(), "; pass the same architecture flags or "
                 "another --out");
    try {
      step = state.at("next_step").get<int64_t>();
      report.train_loss = state.at("train_loss").get<std::vector<std::pair<int64_t, double>>>();
      report.valid_loss = state.at("valid_loss").get<std::vector<std::pair<int64_t, double>>>();
    } catch (const json::exception&) {
      PALIGN_THROW(ErrorCode::kInvalidArgument, "[training.lm] ", state_file.string(),
                   " lacks next_step, train_loss or valid_loss of the right types", start_over);
    }
    // A step outside the run would train a model with a wrong schedule (or none) and report success.
    PALIGN_CHECK(step >= 0 && step <= o.steps, ErrorCode::kInvalidArgument, "[training.lm] ", state_file.string(),
                 ": next_step ", step, " is outside this run's 0..", o.steps, " steps",
                 step > 0 ? "; pass --steps of at least " + std::to_string(step) : std::string(), start_over);
    auto saved = runtime::SafetensorsFile::open(ckpt / "model.safetensors");
    {
      at::NoGradGuard no_grad;
      for (auto& [name, t] : weights) {
        const at::Tensor w = saved.get_f32(name);
        PALIGN_CHECK(w.sizes() == t.sizes(), ErrorCode::kInvalidArgument, "[training.lm] ",
                     (ckpt / "model.safetensors").string(), ": '", name, "' has shape ", w.sizes(), ", not ", t.sizes(),
                     start_over);
        t.copy_(w);
      }
    }
    detail::load_optimizer(opt, ckpt / "optimizer.pt", "training.lm");
    std::fprintf(stderr, "palign: resuming from %s at step %ld\n", ckpt.string().c_str(), static_cast<long>(step));
  }
  report.first_step = step;

  std::vector<at::Tensor> params;
  for (auto& [name, t] : weights) params.push_back(t);
  ProgressBar bar("train lm", o.steps, o.progress);
  const auto t0 = std::chrono::steady_clock::now();
  int64_t tokens = 0;
  double last_valid = report.valid_loss.empty() ? std::nan("") : report.valid_loss.back().second;
  auto elapsed = [&] { return seconds_since(t0); };
  bool stopped_early = false;
  const int64_t last = o.stop_at > 0 ? std::min(o.stop_at, o.steps) : o.steps;
  while (step < last) {
    const double lr = lr_at(o, step);
    for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    opt.zero_grad();
    double step_loss = 0;
    for (int64_t micro = 0; micro < o.grad_accum; ++micro) {
      auto [x, y] = sample_batch(data.train, o.batch, o.ctx, o.seed, step, micro);
      at::Tensor loss = lm_loss(*model, x, y) / static_cast<double>(o.grad_accum);
      loss.backward();
      step_loss += loss.item<double>();
      tokens += o.batch * o.ctx;
    }
    if (o.clip > 0) torch::nn::utils::clip_grad_norm_(params, o.clip);
    opt.step();
    report.train_loss.emplace_back(step, step_loss);
    ++step;
    if (step % o.eval_every == 0 || step == last) {
      last_valid = validation_loss(*model, data.valid, o);
      report.valid_loss.emplace_back(step, last_valid);
    }
    const bool out_of_time = o.max_minutes > 0 && elapsed() > o.max_minutes * 60;
    if (step % o.checkpoint_every == 0 || step == last || out_of_time)
      save_checkpoint(out_dir, *model, opt, o, step, report);
    char status[160], valid[32] = "-";
    if (!std::isnan(last_valid)) std::snprintf(valid, sizeof valid, "%.3f", last_valid);
    std::snprintf(status, sizeof status, "loss %.3f val %s lr %.2e %.0f tok/s", step_loss, valid, lr,
                  tokens / std::max(elapsed(), 1e-9));
    bar.update(step, status);
    if (out_of_time) {
      stopped_early = true;
      break;
    }
  }
  bar.finish(stopped_early ? "stopped at the time limit" : "done");
  report.last_step = step;
  report.seconds = elapsed();
  report.tokens_per_second = tokens / std::max(report.seconds, 1e-9);
  write_model_dir(out_dir, *model, tokenizer_dir, tok, eos);
  write_json(out_dir / "training_log.json", {{"format", "palign.lm_training_log"},
                                             {"version", 1},
                                             {"arch", arch_json(o)},
                                             {"steps", step},
                                             {"params", report.n_params},
                                             {"tokens_per_second", report.tokens_per_second},
                                             {"seconds", report.seconds},
                                             {"train_loss", report.train_loss},
                                             {"valid_loss", report.valid_loss}});
  return report;
}

PerplexityResult eval_perplexity(const fs::path& model_dir, const fs::path& jsonl, const std::string& split,
                                 bool progress) {
  auto model = Model::load(model_dir);
  PALIGN_CHECK(model->config().head == runtime::HeadKind::kCausalLm, ErrorCode::kInvalidArgument,
               "[training.perplexity] ", model_dir.string(), " is not a causal language model");
  auto tok = runtime::Tokenizer::from_dir(model_dir);
  const std::vector<std::string> texts = read_corpus_texts(jsonl, split);
  const int64_t window = model->config().max_position;
  PerplexityResult r;
  double nll = 0;
  c10::InferenceMode guard;
  ProgressBar bar("perplexity", static_cast<int64_t>(texts.size()), progress && !texts.empty());
  int64_t seen = 0;
  for (const auto& text : texts) {
    bar.update(++seen);
    std::vector<int32_t> ids32 = tok.encode(text, /*add_special=*/true);
    std::vector<int64_t> ids(ids32.begin(), ids32.end());
    if (tok.eos_id()) ids.push_back(*tok.eos_id());
    if (ids.size() < 2) continue;
    ++r.records;
    // Windows overlap by one token so that every token after the first is predicted exactly once.
    for (size_t start = 0, end = 0; start + 1 < ids.size(); start = end - 1) {
      end = std::min(ids.size(), start + static_cast<size_t>(window));
      at::Tensor x = at::tensor(std::vector<int64_t>(ids.begin() + start, ids.begin() + end - 1), at::kLong);
      at::Tensor y = at::tensor(std::vector<int64_t>(ids.begin() + start + 1, ids.begin() + end), at::kLong);
      at::Tensor logits = model->forward_full(x);
      nll += at::cross_entropy_loss(logits, y, {}, at::Reduction::Sum).item<double>();
      r.tokens += y.numel();
    }
  }
  bar.finish();
  PALIGN_CHECK(r.tokens > 0, ErrorCode::kInvalidArgument, "[training.perplexity] no records",
               split.empty() ? "" : " of split '" + split + "'", " in ", jsonl.string());
  r.mean_nll = nll / static_cast<double>(r.tokens);
  r.perplexity = std::exp(r.mean_nll);
  return r;
}

}  // namespace palign::training
