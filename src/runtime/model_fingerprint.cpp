// model_fingerprint (see model.h).
#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "palign/base/hash.h"
#include "palign/runtime/config.h"
#include "palign/runtime/model.h"

namespace palign::runtime {

namespace {

// At most this many bytes of each weight enter the fingerprint, evenly spread, so that a 7B model hashes in
// milliseconds; names, shapes and sizes always enter whole.
constexpr int64_t kFingerprintBytesPerTensor = 1 << 16;

std::string hex64(uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace

std::string model_fingerprint(const Model& model) {
  const ModelConfig& c = model.config();
  uint64_t h = fnv1a64(c.to_json());
  for (const auto& [name, w] : model.named_weights()) {
    h = fnv1a64(name, h);
    for (int64_t s : w.sizes()) h = fnv1a64(std::to_string(s) + ",", h);
    const at::Tensor flat = w.detach().to(at::kFloat).contiguous().view(-1);
    const int64_t n = flat.numel();
    const int64_t take = std::min<int64_t>(n, kFingerprintBytesPerTensor / 4);
    const int64_t stride = std::max<int64_t>(1, n / std::max<int64_t>(1, take));
    const at::Tensor sample = flat.slice(0, 0, n, stride).contiguous();
    h = fnv1a64(std::string_view(static_cast<const char*>(sample.data_ptr()), sample.numel() * 4), h);
  }
  return hex64(h);
}

}  // namespace palign::runtime
