// palign serve through the official openai client: a chat completion, a streamed one, n = 2 and feedback, a request
// whose personalization shows the update, and errors as the client's API errors. Usage: node openai_e2e.mjs BASE KEY
import assert from "node:assert/strict";
import OpenAI from "openai";

const [base, key] = process.argv.slice(2);
const client = new OpenAI({ baseURL: base + "/v1", apiKey: key, maxRetries: 0 });
const user = "nia";

const models = await client.models.list();
assert.equal(models.data[0].id, "default");

// A chat completion.
const ask = { model: "default", messages: [{ role: "user", content: "Why did the" }], max_tokens: 16, user, seed: 3 };
const chat = await client.chat.completions.create(ask);
assert.equal(chat.object, "chat.completion");
assert.equal(chat.choices.length, 1);
assert.equal(chat.choices[0].message.role, "assistant");
assert.equal(typeof chat.choices[0].message.content, "string");
assert.ok(["stop", "length"].includes(chat.choices[0].finish_reason));
assert.ok(chat.usage.completion_tokens > 0 && chat.usage.completion_tokens <= 16);
assert.equal(chat.usage.total_tokens, chat.usage.prompt_tokens + chat.usage.completion_tokens);

// The same request streamed: the deltas join to the same text.
const stream = await client.chat.completions.create({ ...ask, stream: true, stream_options: { include_usage: true } });
let streamed = "";
let finish = null;
let usage = null;
let chunks = 0;
for await (const chunk of stream) {
  chunks++;
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) {
    if (c.delta && c.delta.content) streamed += c.delta.content;
    if (c.finish_reason) finish = c.finish_reason;
  }
}
assert.equal(streamed, chat.choices[0].message.content);
assert.equal(finish, chat.choices[0].finish_reason);
assert.equal(usage.completion_tokens, chat.usage.completion_tokens);
console.log(`streamed ${chunks} chunks: ${JSON.stringify(streamed)}`);

// n = 2, then the user's choice between them.
const two = await client.chat.completions.create({ ...ask, n: 2, seed: 9, max_tokens: 24 });
assert.equal(two.choices.length, 2);
assert.equal(two.palign.profile_version, 0);
const feedback = await client.post("/feedback", { body: { user, response_id: two.id, choice: 1 } });
assert.equal(feedback.version, 1);
assert.equal(feedback.observations, 1);
assert.equal(feedback.stored, true);

// The next request is personalized by the updated profile: best_of_n ranks by the user's new weights.
const after = await client.completions.create({
  model: "default", prompt: "Why did the", max_tokens: 12, user, seed: 4,
  palign: { strategy: "best_of_n", best_of: 4 },
});
assert.equal(after.palign.strategy, "best_of_n");
assert.equal(after.palign.profile_version, 1);
let moved = 0;
for (const [name, w] of Object.entries(after.palign.weights)) {
  assert.equal(w, feedback.weights[name].mean);
  moved = Math.max(moved, Math.abs(w - two.palign.weights[name]));
}
assert.ok(moved > 0, "the weights did not move");
console.log(`weights moved by up to ${moved.toFixed(4)} after one choice; best_of_n used them`);
const profile = await client.get(`/users/${user}`);
assert.equal(profile.version, 1);
assert.equal(Object.keys(profile.weights).length, 4);

// Errors arrive as the client's API errors with the right status.
async function expectStatus(promise, status, Kind) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof Kind, `expected ${Kind.name}, got ${e.constructor.name}: ${e.message}`);
    assert.equal(e.status, status);
    assert.equal(typeof e.error.message, "string");
    return e;
  }
  assert.fail(`expected HTTP ${status}`);
}
await expectStatus(client.chat.completions.create({ ...ask, model: "gpt-4" }), 404, OpenAI.NotFoundError);
await expectStatus(client.chat.completions.create({ ...ask, n: 99 }), 400, OpenAI.BadRequestError);
await expectStatus(client.chat.completions.create({ ...ask, palign: { strategy: "nope" } }), 400,
                   OpenAI.BadRequestError);
const wrongKey = new OpenAI({ baseURL: base + "/v1", apiKey: "pa-wrong", maxRetries: 0 });
await expectStatus(wrongKey.chat.completions.create(ask), 401, OpenAI.AuthenticationError);
await expectStatus(client.get("/users/nobody"), 404, OpenAI.NotFoundError);
console.log("openai client: all checks passed");
