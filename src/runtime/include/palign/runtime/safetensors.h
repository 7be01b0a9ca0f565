// safetensors I/O: memory-mapped reading of single files and sharded directories (model.safetensors.index.json),
// with a validated header, and writing. The format: 8-byte little-endian header length N, N bytes of JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the data buffer.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace palign::runtime {

enum class DType { kF32, kF16, kBF16, kF64, kI64, kI32, kI16, kI8, kU8, kBool, kSentinel };

std::string_view dtype_name(DType dtype);  // "F32", "BF16", ...
size_t dtype_size(DType dtype);

struct TensorInfo {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets into the data buffer
  uint64_t end = 0;
};

struct MappedFile;  // private: an mmap of one file

// One safetensors file, memory-mapped. Immutable; tensors returned by get() may alias the mapping, which stays alive
// as long as any such tensor does.
class SafetensorsFile {
 public:
  // Opens and validates path. Throws palign::Error: kNotFound (no file), kInvalidArgument (truncated file, header
  // size out of bounds, malformed JSON, unknown dtype, offsets outside the file, overlapping tensors, byte length
  // inconsistent with dtype and shape), each naming the file and the tensor.
  static SafetensorsFile open(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }

  // The tensor in its stored dtype (zero-copy when the data is suitably aligned). Throws kNotFound for an unknown
  // name.
  at::Tensor get(const std::string& name) const;
  // The tensor converted to float32 (zero-copy for aligned F32 data).
  at::Tensor get_f32(const std::string& name) const;

 private:
  std::filesystem::path path_;
  std::shared_ptr<MappedFile> file_;
  const uint8_t* data_ = nullptr;  // start of the data buffer inside the mapping
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// The weights of a model directory: model.safetensors, or the shards listed by model.safetensors.index.json.
class WeightFiles {
 public:
  // Throws kNotFound when DIR holds neither file (naming both), kInvalidArgument for a bad index or a tensor that
  // the index places in a shard that lacks it.
  static WeightFiles open_dir(const std::filesystem::path& dir);
  // Wraps already opened files (e.g. a single file outside a model directory).
  explicit WeightFiles(std::vector<SafetensorsFile> files);

  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  std::vector<std::string> names() const;
  const TensorInfo& info(const std::string& name) const;
  at::Tensor get(const std::string& name) const;
  at::Tensor get_f32(const std::string& name) const;
  // The dtype most tensors are stored in (for `palign info`).
  DType dominant_dtype() const;

 private:
  std::vector<SafetensorsFile> files_;
  std::map<std::string, size_t> index_;  // tensor name -> file
};

// Writes tensors (any of the supported dtypes; contiguous copies are made as needed) and string metadata to path,
// atomically (a temporary file renamed into place). Throws kIo when the file cannot be written.
void save_safetensors(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace palign::runtime
