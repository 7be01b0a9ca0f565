// palign serve end to end over loopback HTTP (cpp-httplib's client): the OpenAI endpoints, feedback that moves the
// user's posterior before their next request, tenants that cannot reach each other's users, OpenAI-shaped errors for
// every bad input, and a server that survives malformed requests.
#include "palign/server/server.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "palign/runtime/lora.h"
#include "palign/runtime/model.h"
#include "palign/scoring/steering_vectors.h"
#include "palign/server/auth.h"
#include "palign/users/store.h"
#include "temp_dir.h"
#include "test_util.h"

namespace palign::server {
namespace {

using nlohmann::json;

const std::filesystem::path kModel = palign::test::data_dir() / ".." / ".." / "models" / "default";

// One server for the suite: the default model, a store, the fixture's 4-dimension scorer, steering vectors over the
// same 4 names, and keys of two tenants and an admin.
struct Running {
  palign::test::TempDir dir{"server"};
  std::string acme, globex, admin;
  std::unique_ptr<Server> server;
  int port = 0;
  std::thread thread;

  Running() {
    const auto model = runtime::Model::load(kModel);
    at::manual_seed(5);
    std::vector<scoring::SteeringVector> vectors;
    const std::vector<std::string> names = {"helpful", "concise", "formal", "humorous"};
    for (size_t k = 0; k < names.size(); ++k)
      vectors.push_back({names[k], static_cast<int64_t>(k + 1), at::randn({model->config().hidden_size}) * 3.0});
    scoring::save_steering_vectors(dir / "vectors.safetensors", vectors);
    for (int k = 0; k < 2; ++k) {  // two adapters large enough to change greedy text
      auto a = runtime::LoraAdapter::init(
          model->config(), {.r = 4, .alpha = 8, .target_modules = {"q_proj", "v_proj"}, .base_model = {}}, 10 + k);
      at::NoGradGuard no_grad;
      for (auto& [name, t] : a.named_parameters())
        if (name.find("lora_B") != std::string::npos) t.copy_(at::randn_like(t) * 0.5);
      a.save(dir / ("adapter" + std::to_string(k)));
    }
    acme = add_api_key(dir / "keys", "acme", false);
    globex = add_api_key(dir / "keys", "globex", false);
    admin = add_api_key(dir / "keys", "ops", true);
    ServerOptions o;
    o.model = kModel;
    o.store = dir / "users.db";
    o.reward = palign::test::hf_model("llama_rm_multi");
    o.vectors = dir / "vectors.safetensors";
    o.api_keys = dir / "keys";
    o.adapters = {{"a0", dir / "adapter0"}, {"a1", dir / "adapter1"}};
    o.port = 0;
    o.threads = 16;
    o.limits.max_body_bytes = 64 * 1024;
    o.limits.max_tokens = 64;
    server = std::make_unique<Server>(o);
    port = server->bind();
    thread = std::thread([this] { server->run(); });
  }
  ~Running() {
    server->stop();
    thread.join();
  }

  httplib::Client client(const std::string& key) const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(120);
    if (!key.empty()) c.set_default_headers({{"Authorization", "Bearer " + key}});
    return c;
  }
};

// Started at the first test that needs it, stopped when the tests end (before static destructors run).
Running* running = nullptr;

Running& srv() {
  if (!running) running = new Running;
  return *running;
}

class StopServer : public ::testing::Environment {
 public:
  void TearDown() override {
    delete running;
    running = nullptr;
  }
};
[[maybe_unused]] const auto* const kStopServer = ::testing::AddGlobalTestEnvironment(new StopServer);

struct Reply {
  int status = 0;
  json body;
  std::string raw;
};

// The reply of a request (status 0: no answer).
Reply reply_of(const httplib::Result& res) {
  Reply r;
  if (!res) return r;
  r.status = res->status;
  r.raw = res->body;
  r.body = json::parse(res->body, nullptr, false);
  return r;
}

Reply post(const std::string& key, const std::string& path, const std::string& body) {
  return reply_of(srv().client(key).Post(path.c_str(), body, "application/json"));
}

Reply post(const std::string& key, const std::string& path, const json& body) { return post(key, path, body.dump()); }

Reply get(const std::string& key, const std::string& path) { return reply_of(srv().client(key).Get(path.c_str())); }

Reply del(const std::string& key, const std::string& path) { return reply_of(srv().client(key).Delete(path.c_str())); }

// An OpenAI error object with this status.
void expect_error(const Reply& r, int status, const std::string& needle = "") {
  EXPECT_EQ(r.status, status) << r.raw;
  ASSERT_TRUE(r.body.is_object() && r.body.contains("error")) << r.raw;
  const json& e = r.body["error"];
  EXPECT_TRUE(e["message"].is_string());
  EXPECT_TRUE(e["type"].is_string());
  EXPECT_TRUE(e.contains("param") && e.contains("code"));
  if (!needle.empty()) {
    EXPECT_NE(e["message"].get<std::string>().find(needle), std::string::npos) << e["message"];
  }
}

json chat_body(const std::string& user, const std::string& text, json extra = json::object()) {
  json b = {{"model", "default"},
            {"messages", {{{"role", "user"}, {"content", text}}}},
            {"user", user},
            {"max_tokens", 16},
            {"seed", 7}};
  b.update(extra);
  return b;
}

TEST(Server, HealthModelsAndMetrics) {
  const auto h = get("", "/health");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.body["status"], "ok");
  const auto m = get(srv().acme, "/v1/models");
  ASSERT_EQ(m.status, 200) << m.raw;
  EXPECT_EQ(m.body["object"], "list");
  EXPECT_EQ(m.body["data"][0]["id"], "default");
  EXPECT_EQ(get(srv().acme, "/v1/models/default").status, 200);
  expect_error(get(srv().acme, "/v1/models/gpt-4"), 404);
  const auto metrics = get("", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.raw.find("palign_requests_total{endpoint=\"models\",status=\"200\"}"), std::string::npos)
      << metrics.raw;
  EXPECT_NE(metrics.raw.find("palign_queue_depth"), std::string::npos);
}

TEST(Server, ChatCompletionIsOpenAIShaped) {
  const auto r = post(srv().acme, "/v1/chat/completions", chat_body("ana", "Why did the"));
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["object"], "chat.completion");
  EXPECT_EQ(r.body["model"], "default");
  EXPECT_TRUE(r.body["id"].get<std::string>().rfind("chatcmpl-", 0) == 0);
  ASSERT_EQ(r.body["choices"].size(), 1u);
  const json& c = r.body["choices"][0];
  EXPECT_EQ(c["message"]["role"], "assistant");
  EXPECT_TRUE(c["message"]["content"].is_string());
  EXPECT_TRUE(c["finish_reason"] == "stop" || c["finish_reason"] == "length");
  const json& u = r.body["usage"];
  EXPECT_GT(u["prompt_tokens"].get<int>(), 0);
  EXPECT_GT(u["completion_tokens"].get<int>(), 0);
  EXPECT_LE(u["completion_tokens"].get<int>(), 16);
  EXPECT_EQ(u["total_tokens"], u["prompt_tokens"].get<int>() + u["completion_tokens"].get<int>());
  EXPECT_EQ(r.body["palign"]["strategy"], "sample");
  EXPECT_EQ(r.body["palign"]["user"], "ana");
  // The same seed gives the same text; a completion of the rendered prompt is the same continuation.
  const auto again = post(srv().acme, "/v1/chat/completions", chat_body("ana", "Why did the"));
  EXPECT_EQ(again.body["choices"][0]["message"]["content"], c["message"]["content"]);
  EXPECT_NE(again.body["id"], r.body["id"]);
}

TEST(Server, CompletionsWithSeveralChoicesAndStop) {
  const json body = {{"model", "default"}, {"prompt", "Why did the"}, {"n", 3}, {"max_tokens", 12}, {"seed", 3},
                     {"user", "bo"}};
  const auto r = post(srv().acme, "/v1/completions", body);
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["object"], "text_completion");
  ASSERT_EQ(r.body["choices"].size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(r.body["choices"][i]["index"], i);
  // Choice i is the request with n = 1 and seed + i.
  json one = body;
  one["n"] = 1;
  one["seed"] = 5;
  const auto third = post(srv().acme, "/v1/completions", one);
  EXPECT_EQ(third.body["choices"][0]["text"], r.body["choices"][2]["text"]);
  // A stop string cuts the text before it.
  const std::string text = r.body["choices"][0]["text"];
  if (text.size() >= 4) {
    json cut = body;
    cut["n"] = 1;
    cut["stop"] = json::array({text.substr(2, 2)});
    const auto s = post(srv().acme, "/v1/completions", cut);
    EXPECT_EQ(s.body["choices"][0]["text"], text.substr(0, text.find(text.substr(2, 2))));
    EXPECT_EQ(s.body["choices"][0]["finish_reason"], "stop");
  }
}

// The events of a server-sent stream, [DONE] included.
std::vector<std::string> sse_events(const std::string& raw) {
  std::vector<std::string> out;
  size_t pos = 0;
  while ((pos = raw.find("data: ", pos)) != std::string::npos) {
    const size_t end = raw.find("\n\n", pos);
    out.push_back(raw.substr(pos + 6, end - pos - 6));
    pos = end;
  }
  return out;
}

TEST(Server, StreamedChatEqualsTheWholeAnswer) {
  json body = chat_body("cy", "Love is", {{"n", 2}, {"max_tokens", 20}});
  const auto whole = post(srv().acme, "/v1/chat/completions", body);
  ASSERT_EQ(whole.status, 200) << whole.raw;
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  auto c = srv().client(srv().acme);
  const auto res = c.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  const auto events = sse_events(res->body);
  ASSERT_GE(events.size(), 4u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::vector<std::string> text(2);
  std::vector<std::string> finish(2);
  json usage;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    const json e = json::parse(events[i]);
    if (e.contains("usage")) {
      usage = e["usage"];
      continue;
    }
    EXPECT_EQ(e["object"], "chat.completion.chunk");
    const json& ch = e["choices"][0];
    const size_t k = ch["index"];
    if (ch["delta"].contains("content")) text[k] += ch["delta"]["content"].get<std::string>();
    if (!ch["finish_reason"].is_null()) finish[k] = ch["finish_reason"];
  }
  for (size_t k = 0; k < 2; ++k) {
    EXPECT_EQ(text[k], whole.body["choices"][k]["message"]["content"]) << "choice " << k;
    EXPECT_EQ(finish[k], whole.body["choices"][k]["finish_reason"]);
  }
  EXPECT_EQ(usage["completion_tokens"], whole.body["usage"]["completion_tokens"]);
}

TEST(Server, MetricsCountTheWork) {
  ASSERT_EQ(post(srv().acme, "/v1/chat/completions", chat_body("met", "Why")).status, 200);
  const auto m = get("", "/metrics").raw;
  for (const char* needle : {"palign_requests_total{endpoint=\"chat.completions\",status=\"200\"}",
                             "palign_first_token_seconds_count{strategy=\"sample\"}",
                             "palign_request_seconds_count{strategy=\"sample\"}", "palign_completion_tokens_total"})
    EXPECT_NE(m.find(needle), std::string::npos) << needle << " missing from\n" << m;
  EXPECT_EQ(m.find("palign_completion_tokens_total 0\n"), std::string::npos);
  EXPECT_EQ(m.find("status=\"-1\""), std::string::npos);
}

TEST(Server, FeedbackMovesTheProfileBeforeTheNextRequest) {
  const std::string key = srv().acme;
  const auto first = post(key, "/v1/chat/completions", chat_body("dee", "Why did the", {{"n", 2}, {"seed", 11}}));
  ASSERT_EQ(first.status, 200) << first.raw;
  EXPECT_EQ(first.body["palign"]["profile_version"], 0);
  const json before = first.body["palign"]["weights"];
  const auto fb = post(key, "/v1/feedback", json{{"user", "dee"}, {"response_id", first.body["id"]}, {"choice", 1}});
  ASSERT_EQ(fb.status, 200) << fb.raw;
  EXPECT_EQ(fb.body["version"], 1);
  EXPECT_EQ(fb.body["events"], 1);
  EXPECT_EQ(fb.body["stored"], true);
  // The next request is personalized by the new posterior: steer reads the moved weights.
  const auto next =
      post(key, "/v1/chat/completions", chat_body("dee", "Why did the", {{"palign", {{"strategy", "steer"}}}}));
  ASSERT_EQ(next.status, 200) << next.raw;
  EXPECT_EQ(next.body["palign"]["strategy"], "steer");
  EXPECT_EQ(next.body["palign"]["profile_version"], 1);
  double moved = 0;
  for (const auto& [name, w] : next.body["palign"]["weights"].items()) {
    EXPECT_DOUBLE_EQ(w.get<double>(), fb.body["weights"][name]["mean"].get<double>());
    moved = std::max(moved, std::abs(w.get<double>() - before[name].get<double>()));
  }
  std::cout << "largest weight change after one choice: " << moved << "\n";
  EXPECT_GT(moved, 1e-6);
  // The stored user: weights with uncertainty, the event, the version.
  const auto u = get(key, "/v1/users/dee");
  ASSERT_EQ(u.status, 200) << u.raw;
  EXPECT_EQ(u.body["version"], 1);
  EXPECT_EQ(u.body["weights"].size(), 4u);
  EXPECT_LT(u.body["weights"]["helpful"]["sd"].get<double>(), 1.0);
  // The same idempotency key twice stores one event.
  const json pair = {{"user", "dee"}, {"prompt", "Tell me"}, {"chosen", " a joke"}, {"rejected", " no"}, {"key", "k1"}};
  EXPECT_EQ(post(key, "/v1/feedback", pair).body["stored"], true);
  const auto dup = post(key, "/v1/feedback", pair);
  EXPECT_EQ(dup.body["stored"], false);
  EXPECT_EQ(dup.body["events"], 2);
  // A rating and a statement.
  EXPECT_EQ(
      post(key, "/v1/feedback", json{{"user", "dee"}, {"response_id", first.body["id"]}, {"index", 0}, {"rating", -1}})
          .body["events"],
      3);
  const auto st =
      post(key, "/v1/feedback",
           json{{"user", "dee"}, {"statement", "Shorter, please."}, {"dimension", "concise"}, {"direction", 1}});
  EXPECT_EQ(st.body["statement"], "Shorter, please.");
  EXPECT_EQ(st.body["version"], 4);
}

TEST(Server, WholeRequestStrategiesAndElicitation) {
  const std::string key = srv().acme;
  const auto r = post(key, "/v1/completions",
                      json{{"model", "default"},
                           {"prompt", "Why did the"},
                           {"max_tokens", 10},
                           {"user", "eve"},
                           {"n", 2},
                           {"palign", {{"strategy", "best_of_n"}, {"best_of", 3}}}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["palign"]["strategy"], "best_of_n");
  EXPECT_EQ(r.body["choices"].size(), 2u);
  const auto e = post(key, "/v1/users/eve/elicit", json{{"prompt", "Why did the"}, {"candidates", 4}, {"seed", 1}});
  ASSERT_EQ(e.status, 200) << e.raw;
  ASSERT_EQ(e.body["choices"].size(), 2u);
  EXPECT_NE(e.body["choices"][0], e.body["choices"][1]);
  EXPECT_GT(e.body["information"].get<double>(), 0.0);
  const auto fb = post(key, "/v1/feedback", json{{"user", "eve"}, {"response_id", e.body["id"]}, {"choice", 0}});
  EXPECT_EQ(fb.status, 200) << fb.raw;
  EXPECT_EQ(fb.body["observations"], 1);
}

TEST(Server, EachRequestItsOwnAdapterOrMix) {
  const std::string k = srv().acme;
  const auto text = [&](json palign) {
    json body = chat_body("gus", "Why did the", {{"temperature", 0}, {"max_tokens", 12}});
    if (!palign.is_null()) body["palign"] = palign;
    const auto r = post(k, "/v1/chat/completions", body);
    EXPECT_EQ(r.status, 200) << r.raw;
    return r.body["choices"][0]["message"]["content"].get<std::string>();
  };
  const std::string plain = text(nullptr), a0 = text({{"adapter", "a0"}}), a1 = text({{"adapter", "a1"}});
  std::cout << "plain: " << plain << "\na0: " << a0 << "\na1: " << a1 << "\n";
  EXPECT_NE(a0, plain);
  EXPECT_NE(a0, a1);
  // A mix of one adapter at weight 1 is that adapter; a mix at weight 0 is the base model.
  EXPECT_EQ(text({{"adapters", {{"a0", 1.0}}}}), a0);
  EXPECT_EQ(text({{"adapters", {{"a0", 0.0}, {"a1", 0.0}}}}), plain);
  // The adapter rides on steer rows too, and the response says which one it was.
  const auto r = post(k, "/v1/chat/completions",
                      chat_body("gus", "Why", {{"palign", {{"strategy", "steer"}, {"adapters", "profile"}}}}));
  EXPECT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["palign"]["adapter"], "a0=0,a1=0");  // gus weighs no dimension named a0 or a1
  // fusion over the server's adapters, by name, with the request's weights, as rows of the batch: greedy under
  // weights (1, 0) is a0's greedy answer (the argmax of its log-probabilities); a file path is refused.
  const auto fused = post(
      k, "/v1/chat/completions",
      chat_body("gus", "Why", {{"palign", {{"strategy", "fusion"}, {"models", "a0,a1"}, {"weights", "0.5,0.5"}}}}));
  EXPECT_EQ(fused.status, 200) << fused.raw;
  EXPECT_EQ(fused.body["palign"]["strategy"], "fusion");
  EXPECT_EQ(fused.body["palign"]["fusion"], (json{{"a0", 0.5}, {"a1", 0.5}}));
  EXPECT_EQ(text({{"strategy", "fusion"}, {"models", "a0,a1"}, {"weights", "1,0"}}), a0);
  EXPECT_EQ(text({{"strategy", "fusion"}, {"models", "a1,a0"}, {"weights", "a0=0,a1=1"}}), a1);
  const std::string mixed = text({{"strategy", "fusion"}, {"models", "a0,a1"}, {"weights", "0.5,0.5"}});
  std::cout << "fusion a0,a1 at 0.5,0.5: " << mixed << "\n";
  expect_error(post(k, "/v1/chat/completions",
                    chat_body("gus", "Why", {{"palign", {{"strategy", "fusion"}, {"models", "a0,a1"}}}})),
               400, "no weight for 'a0'");  // gus's profile weighs dimensions, not these adapters
  expect_error(
      post(k, "/v1/chat/completions",
           chat_body("gus", "Why", {{"palign", {{"strategy", "fusion"}, {"models", "a0,a1"}, {"weights", "1,nan"}}}})),
      400, "weight");
  expect_error(
      post(k, "/v1/chat/completions",
           chat_body("gus", "Why",
                     {{"palign", {{"strategy", "fusion"}, {"models", "a0"}, {"weights", "1"}, {"best_of", 3}}}})),
      400, "belongs to");
  expect_error(post(k, "/v1/chat/completions",
                    chat_body("gus", "Why",
                              {{"palign", {{"strategy", "fusion"}, {"models", "a0,/tmp/x"}, {"weights", "0.5,0.5"}}}})),
               400, "only this server's adapters");
  expect_error(post(k, "/v1/chat/completions", chat_body("gus", "Why", {{"palign", {{"adapter", "zz"}}}})), 400,
               "a0, a1");
  expect_error(post(k, "/v1/chat/completions",
                    chat_body("gus", "Why", {{"palign", {{"adapter", "a0"}, {"adapters", {{"a1", 1}}}}}})),
               400, "not both");
  expect_error(post(k, "/v1/chat/completions",
                    chat_body("gus", "Why", {{"palign", {{"strategy", "best_of_n"}, {"adapter", "a0"}}}})),
               400, "sample and steer");
  expect_error(post(k, "/v1/chat/completions", chat_body("gus", "Why", {{"palign", {{"adapters", {{"a0", "x"}}}}}})),
               400, "number");
}

// A streaming client that goes away frees its row: the scheduler cancels it at the next step.
TEST(Server, DisconnectedClientFreesItsRow) {
  const auto cancelled = [] {
    const std::string m = get("", "/metrics").raw;
    const std::string key = "palign_rows_total{end=\"cancelled\"} ";
    const auto at = m.find(key);
    return at == std::string::npos ? -1 : std::stoi(m.substr(at + key.size()));
  };
  const int before = cancelled();
  httplib::Client c("127.0.0.1", srv().port);
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.headers = {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + srv().acme}};
  req.body = json{{"model", "default"}, {"prompt", "Once upon a time"},
                  {"max_tokens", 64},   {"stream", true},
                  {"user", "hal"},      {"seed", 1},
                  {"stop", "zzzz"}}
                 .dump();
  int chunks = 0;
  req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) { return ++chunks < 2; };  // hang up
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  (void)c.send(req, res, err);
  int after = before;
  for (int i = 0; i < 100 && after == before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    after = cancelled();
  }
  std::cout << "cancelled rows: " << before << " -> " << after << "\n";
  EXPECT_EQ(after, before + 1);
}

TEST(Server, TenantsCannotReachEachOthersUsers) {
  const std::string a = srv().acme, b = srv().globex;
  const auto mine = post(a, "/v1/chat/completions", chat_body("fay", "Why", {{"n", 2}}));
  ASSERT_EQ(mine.status, 200);
  ASSERT_EQ(post(a, "/v1/feedback", json{{"user", "fay"}, {"response_id", mine.body["id"]}, {"choice", 0}}).status,
            200);
  // globex's "fay" is another user: none yet.
  expect_error(get(b, "/v1/users/fay"), 404);
  // acme's response cannot be answered by globex, under any user name.
  expect_error(post(b, "/v1/feedback", json{{"user", "fay"}, {"response_id", mine.body["id"]}, {"choice", 0}}), 404);
  // Store ids of another tenant are refused, and deleting another tenant's user deletes nothing.
  expect_error(get(b, "/v1/users/acme%2Ffay"), 400);
  expect_error(post(b, "/v1/feedback", json{{"user", "acme/fay"}, {"statement", "x"}}), 400);
  expect_error(del(b, "/v1/users/fay"), 404);
  expect_error(post(b, "/v1/users/acme/fay/elicit", json{{"prompt", "Why"}}), 400);
  EXPECT_EQ(get(a, "/v1/users/fay").body["events"], 1);
  // globex's requests for "fay" are personalized by globex's fay (the prior), not acme's.
  const auto theirs = post(b, "/v1/chat/completions", chat_body("fay", "Why"));
  EXPECT_EQ(theirs.body["palign"]["profile_version"], 0);
  // The admin names users by store id.
  const auto seen = get(srv().admin, "/v1/users/acme%2Ffay");
  EXPECT_EQ(seen.status, 200) << seen.raw;
  // Keys: none, or a wrong one.
  expect_error(get("", "/v1/models"), 401);
  expect_error(get("pa-not-a-key", "/v1/users/fay"), 401);
  expect_error(post("wrong", "/v1/chat/completions", chat_body("fay", "Why")), 401);
  // acme deletes its own user.
  EXPECT_EQ(del(a, "/v1/users/fay").status, 200);
  expect_error(get(a, "/v1/users/fay"), 404);
}

TEST(Server, AdminManagesKeysAndUsers) {
  const std::string admin = srv().admin, acme = srv().acme;
  expect_error(get(acme, "/v1/admin/keys"), 403);
  expect_error(post(acme, "/v1/admin/keys", json{{"tenant", "evil"}}), 403);
  expect_error(get(acme, "/v1/admin/users"), 403);
  const auto listed = get(admin, "/v1/admin/keys");
  ASSERT_EQ(listed.status, 200) << listed.raw;
  EXPECT_GE(listed.body["data"].size(), 3u);
  EXPECT_EQ(listed.raw.find(acme), std::string::npos) << "a key itself was listed";
  // A new key works at once; deleted, it stops working at once.
  const auto made = post(admin, "/v1/admin/keys", json{{"tenant", "initech"}});
  ASSERT_EQ(made.status, 200) << made.raw;
  const std::string key = made.body["key"];
  EXPECT_EQ(made.body["hash"], hash_key(key));
  EXPECT_EQ(get(key, "/v1/models").status, 200);
  expect_error(get(key, "/v1/admin/keys"), 403);
  EXPECT_EQ(del(admin, "/v1/admin/keys/" + made.body["hash"].get<std::string>()).status, 200);
  expect_error(get(key, "/v1/models"), 401);
  expect_error(del(admin, "/v1/admin/keys/" + hash_key(admin)), 409);
  expect_error(del(admin, "/v1/admin/keys/" + hash_key("nobody")), 404);
  expect_error(post(admin, "/v1/admin/keys", json{{"tenant", "a b"}}), 400, "tenant");
  expect_error(post(admin, "/v1/admin/keys", json{{"tenant", "x"}, {"admin", "yes"}}), 400, "admin");
  // Users of one tenant, by store id.
  ASSERT_EQ(post(acme, "/v1/feedback", json{{"user", "ivy"}, {"statement", "short"}}).status, 200);
  const auto users = get(admin, "/v1/admin/users?tenant=acme");
  ASSERT_EQ(users.status, 200) << users.raw;
  bool ivy = false;
  for (const auto& id : users.body["data"]) {
    EXPECT_EQ(id.get<std::string>().rfind("acme/", 0), 0u) << id;
    ivy |= id == "acme/ivy";
  }
  EXPECT_TRUE(ivy);
}

TEST(Server, BadRequestsGetOpenAIErrors) {
  const std::string k = srv().acme;
  expect_error(post(k, "/v1/chat/completions", std::string("{not json")), 400, "not valid JSON");
  expect_error(post(k, "/v1/chat/completions", std::string("[1, 2]")), 400, "object");
  expect_error(post(k, "/v1/chat/completions", chat_body("u", "hi", {{"model", "gpt-4"}})), 404, "gpt-4");
  expect_error(post(k, "/v1/chat/completions", json{{"model", "default"}, {"messages", json::array()}}), 400,
               "messages");
  expect_error(post(k, "/v1/chat/completions", json{{"model", "default"}, {"messages", {{{"content", "x"}}}}}), 400,
               "role");
  expect_error(post(k, "/v1/chat/completions", chat_body("u", "hi", {{"max_tokens", "ten"}})), 400, "max_tokens");
  expect_error(post(k, "/v1/chat/completions", chat_body("u", "hi", {{"max_tokens", 100000}})), 400, "max_tokens");
  expect_error(post(k, "/v1/chat/completions", chat_body("u", "hi", {{"n", 99}})), 400, "'n'");
  expect_error(post(k, "/v1/chat/completions", chat_body("u", "hi", {{"temperature", -1}})), 400, "temperature");
  expect_error(post(k, "/v1/chat/completions", chat_body("u", "hi", {{"stop", 3}})), 400, "stop");
  expect_error(post(k, "/v1/chat/completions", chat_body("u", "hi", {{"user", 5}})), 400, "user");
  expect_error(post(k, "/v1/chat/completions", chat_body("u", "hi", {{"palign", {{"strategy", "nope"}}}})), 400,
               "nope");
  expect_error(post(k, "/v1/chat/completions", chat_body("u", "hi", {{"palign", {{"bogus", 1}}}})), 400, "bogus");
  expect_error(post(k, "/v1/chat/completions",
                    chat_body("u", "hi", {{"palign", {{"strategy", "steer"}, {"vectors", "/etc/passwd"}}}})),
               400, "file on the server");
  expect_error(
      post(k, "/v1/chat/completions", chat_body("u", "hi", {{"palign", {{"strategy", "steer"}, {"lambda", "big"}}}})),
      400, "lambda");
  expect_error(post(k, "/v1/completions", json{{"model", "default"}, {"prompt", 5}}), 400, "prompt");
  expect_error(post(k, "/v1/feedback", json{{"user", "u"}, {"response_id", "chatcmpl-nope"}, {"choice", 0}}), 404);
  expect_error(post(k, "/v1/feedback", json{{"user", "u"}, {"prompt", "p"}}), 400, "chosen");
  expect_error(post(k, "/v1/feedback", json{{"user", "u"}, {"prompt", "p"}, {"response", "r"}, {"rating", 3}}), 400,
               "rating");
  expect_error(post(k, "/v1/feedback", json{{"prompt", "p"}}), 400, "user");
  expect_error(post(k, "/v1/users/u/elicit", json{{"prompt", "Why"}, {"candidates", 1}}), 400, "candidates");
  expect_error(get(k, "/v1/nothing"), 404);
  // Found while moving the body checks out of the handlers for the request-body fuzzer: a content part of another
  // JSON type, and a path that URL-decodes to bytes that are not UTF-8, were answered as 500 internal errors.
  expect_error(post(k, "/v1/chat/completions",
                    chat_body("u", "", {{"messages", {{{"role", "user"}, {"content", {{{"type", 5}}}}}}}})),
               400, "text parts");
  expect_error(get(k, "/v1/users/%FF"), 400, "UTF-8");
  expect_error(get(k, "/v1/models/%FF%FE"), 404, "does not exist");
  expect_error(get(k, "/v1/nothing/%FF"), 404, "no endpoint");
  expect_error(post(k, "/v1/chat/completions", std::string(100 * 1024, 'x')), 413);
}

// Random bodies and random mutations of valid ones at every endpoint: every answer is JSON, none is a 5xx, and the
// server still answers a good request afterwards.
TEST(Server, MalformedRequestsNeverCrashIt) {
  const std::string k = srv().acme;
  std::mt19937 rng(42);
  const std::vector<std::string> paths = {"/v1/chat/completions", "/v1/completions", "/v1/feedback",
                                          "/v1/users/zed/elicit"};
  const std::vector<std::string> seeds = {
      chat_body("zed", "Why").dump(), json{{"model", "default"}, {"prompt", "Why"}, {"max_tokens", 4}, {"n", 2}}.dump(),
      json{{"user", "zed"}, {"prompt", "p"}, {"chosen", "a"}, {"rejected", "b"}}.dump(),
      json{{"prompt", "Why"}, {"candidates", 2}, {"max_tokens", 4}}.dump()};
  const std::string alphabet = std::string("{}[]\",:0123456789.-eE truefalsnul\\uabc") + '\xff' + '\0';
  int answered = 0, server_errors = 0;
  for (int i = 0; i < 120; ++i) {
    const size_t p = rng() % paths.size();
    std::string body = seeds[p];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !body.empty(); ++e) {
      const size_t at = rng() % body.size();
      switch (rng() % 3) {
        case 0:
          body[at] = alphabet[rng() % alphabet.size()];
          break;
        case 1:
          body.erase(at, 1 + rng() % 8);
          break;
        default:
          body.insert(at, 1, alphabet[rng() % alphabet.size()]);
      }
    }
    const auto r = post(k, paths[p], body);
    if (r.status == 0) continue;
    ++answered;
    server_errors += r.status >= 500;
    EXPECT_FALSE(r.body.is_discarded()) << paths[p] << " answered non-JSON to " << body;
    if (r.status >= 500) ADD_FAILURE() << paths[p] << " answered " << r.status << " to " << body << ": " << r.raw;
  }
  std::cout << answered << " malformed requests answered, " << server_errors << " with a 5xx\n";
  EXPECT_EQ(answered, 120);
  EXPECT_EQ(post(k, "/v1/chat/completions", chat_body("zed", "Why")).status, 200);
}

TEST(ServerAuth, KeyFilesAreCheckedAndHashed) {
  palign::test::TempDir dir("server_auth");
  const std::string key = add_api_key(dir / "k", "acme", false);
  EXPECT_EQ(key.rfind("pa-", 0), 0u);
  const std::string text = [&] {
    std::ifstream in(dir / "k");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  EXPECT_EQ(text.find(key), std::string::npos) << "the key itself was stored";
  EXPECT_NE(text.find(hash_key(key)), std::string::npos);
  const auto ring = KeyRing::load(dir / "k");
  ASSERT_NE(ring.find(key), nullptr);
  EXPECT_EQ(ring.find(key)->tenant, "acme");
  EXPECT_EQ(ring.find(key + "x"), nullptr);
  EXPECT_EQ(hash_key("abc"), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_THROW(add_api_key(dir / "k", "bad tenant", false), Error);
  dir.write("bad", "acme sha256:1234\n");
  EXPECT_THROW(KeyRing::load(dir / "bad"), Error);
  dir.write("dup", text + text);
  EXPECT_THROW(KeyRing::load(dir / "dup"), Error);
  EXPECT_THROW(KeyRing::load(dir / "missing"), Error);
  // No keys and a public address: refused before anything loads.
  ServerOptions o;
  o.model = kModel;
  o.store = dir / "s.db";
  o.host = "0.0.0.0";
  EXPECT_THROW(Server{o}, Error);
}

// A server without a scorer (no --reward) and without keys: completions are served; feedback that needs scores is
// refused with what to do.
TEST(ServerWithoutScorer, ServesAndSaysWhatFeedbackNeeds) {
  palign::test::TempDir dir("server_plain");
  ServerOptions o;
  o.model = kModel;
  o.store = dir / "u.db";
  o.port = 0;
  Server server(o);
  const int port = server.bind();
  std::thread t([&] { server.run(); });
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60);
  const auto chat =
      reply_of(c.Post("/v1/chat/completions", chat_body("ana", "Why did the").dump(), "application/json"));
  EXPECT_EQ(chat.status, 200) << chat.raw;
  EXPECT_TRUE(chat.body["palign"]["weights"].empty());
  const json pair = {{"user", "ana"}, {"prompt", "p"}, {"chosen", "a"}, {"rejected", "b"}};
  expect_error(reply_of(c.Post("/v1/feedback", pair.dump(), "application/json")), 400, "--reward");
  expect_error(
      reply_of(c.Post("/v1/feedback", json{{"user", "ana"}, {"statement", "short"}}.dump(), "application/json")), 400,
      "palign user create");
  // A stream is not compressed, whatever the client accepts: each event reaches it as it is made.
  json stream = chat_body("ana", "Why did the");
  stream["stream"] = true;
  const auto res = c.Post("/v1/chat/completions", {{"Accept-Encoding", "gzip, br"}}, stream.dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->get_header_value("Content-Encoding"), "");
  EXPECT_NE(res->body.find("data: [DONE]"), std::string::npos);
  server.stop();
  t.join();
}

}  // namespace
}  // namespace palign::server
