// Fuzzes PEFT adapter configs (adapter_config.json, LoraAdapter::load): the input is the config, next to the
// adapter_model.safetensors of a real adapter (r 4 on every linear of the Llama fixture), written once.
#include "fuzz_util.h"
#include "palign/base/error.h"
#include "palign/runtime/config.h"
#include "palign/runtime/lora.h"

namespace {

struct Fixture {
  palign::runtime::ModelConfig model;
  std::filesystem::path dir;
};

const Fixture& fixture() {
  static const Fixture f = [] {
    Fixture x;
    x.model = palign::runtime::ModelConfig::load(palign::fuzz::source_dir() / "tests" / "data" / "hf" / "models" /
                                                 "llama" / "config.json");
    x.dir = palign::fuzz::scratch_dir() / "adapter";
    palign::runtime::LoraConfig lora;
    lora.r = 4;
    lora.target_modules = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
    palign::runtime::LoraAdapter::init(x.model, lora, /*seed=*/1).save(x.dir);
    return x;
  }();
  return f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Fixture& f = fixture();
  palign::fuzz::write_file(f.dir / "adapter_config.json", palign::fuzz::as_text(data, size));
  try {
    const auto adapter = palign::runtime::LoraAdapter::load(f.dir, f.model);
    (void)adapter.scaling();
  } catch (const palign::Error&) {
  }
  return 0;
}
