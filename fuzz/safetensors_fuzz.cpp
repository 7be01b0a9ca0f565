// Fuzzes the safetensors reader (SafetensorsFile::open: the 8-byte header size, the JSON header, dtypes, shapes and
// offsets) on a file holding the input, then reads every tensor it accepted, as a model load does.
#include <ATen/ATen.h>

#include "fuzz_util.h"
#include "palign/base/error.h"
#include "palign/runtime/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = palign::fuzz::scratch_dir() / "model.safetensors";
  palign::fuzz::write_file(path, palign::fuzz::as_text(data, size));
  try {
    const auto file = palign::runtime::SafetensorsFile::open(path);
    for (const auto& [name, info] : file.tensors()) {
      (void)file.get(name).sum();
      (void)file.get_f32(name);
    }
  } catch (const palign::Error&) {
  }
  return 0;
}
