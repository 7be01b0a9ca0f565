// safetensors reading (mmap + header validation) and writing. See safetensors.h for the format.
#include "palign/runtime/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "palign/base/error.h"

namespace palign::runtime {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // same bound as the reference implementation

struct DTypeRow {
  DType dtype;
  const char* name;
  size_t size;
  c10::ScalarType scalar;
};
constexpr DTypeRow kDTypes[] = {
    {DType::kF32, "F32", 4, c10::ScalarType::Float},   {DType::kF16, "F16", 2, c10::ScalarType::Half},
    {DType::kBF16, "BF16", 2, c10::ScalarType::BFloat16}, {DType::kF64, "F64", 8, c10::ScalarType::Double},
    {DType::kI64, "I64", 8, c10::ScalarType::Long},    {DType::kI32, "I32", 4, c10::ScalarType::Int},
    {DType::kI16, "I16", 2, c10::ScalarType::Short},   {DType::kI8, "I8", 1, c10::ScalarType::Char},
    {DType::kU8, "U8", 1, c10::ScalarType::Byte},      {DType::kBool, "BOOL", 1, c10::ScalarType::Bool},
};

const DTypeRow& row(DType dtype) {
  for (const auto& r : kDTypes)
    if (r.dtype == dtype) return r;
  PALIGN_THROW(ErrorCode::kInternal, "[runtime.safetensors] bad dtype enum");
}

std::optional<DType> parse_dtype(const std::string& name) {
  for (const auto& r : kDTypes)
    if (name == r.name) return r.dtype;
  return std::nullopt;
}

DType from_scalar(c10::ScalarType scalar) {
  for (const auto& r : kDTypes)
    if (r.scalar == scalar) return r.dtype;
  PALIGN_THROW(ErrorCode::kInvalidArgument, "[runtime.save_safetensors] unsupported tensor dtype ",
               c10::toString(scalar));
}
}  // namespace

std::string_view dtype_name(DType dtype) { return row(dtype).name; }
size_t dtype_size(DType dtype) { return row(dtype).size; }

struct MappedFile {
  void* addr = nullptr;
  size_t size = 0;
  ~MappedFile() {
    if (addr && size) munmap(addr, size);
  }
};

SafetensorsFile SafetensorsFile::open(const fs::path& path) {
  const std::string p = path.string();
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  PALIGN_CHECK(fd >= 0, ErrorCode::kNotFound, "[runtime.safetensors] cannot open ", p, ": ", std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    PALIGN_THROW(ErrorCode::kInvalidArgument, "[runtime.safetensors] ", p, " is not a regular file");
  }
  auto mapped = std::make_shared<MappedFile>();
  mapped->size = static_cast<size_t>(st.st_size);
  if (mapped->size > 0) {
    mapped->addr = mmap(nullptr, mapped->size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (mapped->addr == MAP_FAILED) {
      mapped->addr = nullptr;
      ::close(fd);
      PALIGN_THROW(ErrorCode::kIo, "[runtime.safetensors] cannot map ", p, ": ", std::strerror(errno));
    }
  }
  ::close(fd);
  const auto* bytes = static_cast<const uint8_t*>(mapped->addr);
  const uint64_t file_size = mapped->size;
  PALIGN_CHECK(file_size >= 8, ErrorCode::kInvalidArgument, "[runtime.safetensors] ", p, " is truncated (",
               file_size, " bytes; a safetensors file starts with an 8-byte header length)");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  PALIGN_CHECK(header_len <= kMaxHeaderBytes && header_len <= file_size - 8, ErrorCode::kInvalidArgument,
               "[runtime.safetensors] ", p, ": header length ", header_len, " exceeds the file (", file_size,
               " bytes) or the 100 MB bound; the file is truncated or not safetensors");
  json header;
  try {
    header = json::parse(bytes + 8, bytes + 8 + header_len);
  } catch (const json::exception& e) {
    PALIGN_THROW(ErrorCode::kInvalidArgument, "[runtime.safetensors] ", p, ": header is not valid JSON (", e.what(),
                 ")");
  }
  PALIGN_CHECK(header.is_object(), ErrorCode::kInvalidArgument, "[runtime.safetensors] ", p,
               ": header is not a JSON object");

  SafetensorsFile out;
  out.path_ = path;
  out.file_ = mapped;
  out.data_ = bytes + 8 + header_len;
  const uint64_t data_size = file_size - 8 - header_len;
  std::vector<std::pair<uint64_t, const std::string*>> spans;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      PALIGN_CHECK(v.is_object(), ErrorCode::kInvalidArgument, "[runtime.safetensors] ", p,
                   ": __metadata__ must be an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        PALIGN_CHECK(m.value().is_string(), ErrorCode::kInvalidArgument, "[runtime.safetensors] ", p,
                     ": __metadata__ value for '", m.key(), "' is not a string");
        out.metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "[runtime.safetensors] " + p + ": tensor '" + name + "'";
    PALIGN_CHECK(v.is_object() && v.contains("dtype") && v.contains("shape") && v.contains("data_offsets"),
                 ErrorCode::kInvalidArgument, where, " needs dtype, shape and data_offsets");
    PALIGN_CHECK(v["dtype"].is_string(), ErrorCode::kInvalidArgument, where, ": dtype is not a string");
    auto dtype = parse_dtype(v["dtype"].get<std::string>());
    PALIGN_CHECK(dtype.has_value(), ErrorCode::kInvalidArgument, where, ": unsupported dtype ", v["dtype"].dump());
    TensorInfo info;
    info.dtype = *dtype;
    PALIGN_CHECK(v["shape"].is_array(), ErrorCode::kInvalidArgument, where, ": shape is not an array");
    uint64_t numel = 1;
    for (const auto& d : v["shape"]) {
      PALIGN_CHECK(d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0),
                   ErrorCode::kInvalidArgument, where, ": shape entries must be non-negative integers");
      const auto dim = d.get<uint64_t>();
      PALIGN_CHECK(dim == 0 || numel <= (uint64_t{1} << 62) / dim, ErrorCode::kInvalidArgument, where,
                   ": shape is too large");
      numel *= dim;
      info.shape.push_back(static_cast<int64_t>(dim));
    }
    const json& off = v["data_offsets"];
    PALIGN_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(),
                 ErrorCode::kInvalidArgument, where, ": data_offsets must be two non-negative integers");
    info.begin = off[0].get<uint64_t>();
    info.end = off[1].get<uint64_t>();
    PALIGN_CHECK(info.begin <= info.end && info.end <= data_size, ErrorCode::kInvalidArgument, where,
                 ": data_offsets [", info.begin, ", ", info.end, "] point outside the data (", data_size,
                 " bytes); the file is truncated or corrupt");
    // numel (up to 2^62) times the element size can wrap around 2^64: compare within the data's size.
    PALIGN_CHECK(numel <= data_size / dtype_size(info.dtype) && info.end - info.begin == numel * dtype_size(info.dtype),
                 ErrorCode::kInvalidArgument, where, ": ", info.end - info.begin, " bytes do not hold ", numel,
                 " elements of ", dtype_name(info.dtype));
    auto [slot, inserted] = out.tensors_.emplace(name, std::move(info));
    spans.emplace_back(slot->second.begin, &slot->first);
  }
  // As the reference implementation requires: sorted by offset, the tensors tile the data section exactly, with no
  // gap, no overlap and no byte after the last one. A header length that is off (landing in the header's padding or
  // in the data) shifts the data section and fails here instead of reading shifted bytes as weights.
  std::sort(spans.begin(), spans.end(), [&](const auto& a, const auto& b) {
    const auto& ia = out.tensors_.at(*a.second);
    const auto& ib = out.tensors_.at(*b.second);
    return std::pair(ia.begin, ia.end) < std::pair(ib.begin, ib.end);
  });
  uint64_t covered = 0;
  const std::string* previous = nullptr;
  for (const auto& [begin, name] : spans) {
    const TensorInfo& info = out.tensors_.at(*name);
    PALIGN_CHECK(begin >= covered, ErrorCode::kInvalidArgument, "[runtime.safetensors] ", p, ": tensors '",
                 previous ? *previous : std::string(), "' and '", *name, "' overlap; the file is corrupt");
    PALIGN_CHECK(begin == covered, ErrorCode::kInvalidArgument, "[runtime.safetensors] ", p, ": tensor '", *name,
                 "' starts at data offset ", begin, " but the data before it ends at ", covered,
                 " (a gap); the file is corrupt or the header length is wrong");
    covered = info.end;
    previous = name;
  }
  PALIGN_CHECK(covered == data_size, ErrorCode::kInvalidArgument, "[runtime.safetensors] ", p, ": the tensors hold ",
               covered, " bytes but the data section after the ", header_len, "-byte header has ", data_size,
               "; the header length is wrong or the file has stray bytes; re-save the file");
  return out;
}

at::Tensor SafetensorsFile::get(const std::string& name) const {
  auto it = tensors_.find(name);
  PALIGN_CHECK(it != tensors_.end(), ErrorCode::kNotFound, "[runtime.safetensors] no tensor '", name, "' in ",
               path_.string());
  const TensorInfo& info = it->second;
  const auto scalar = row(info.dtype).scalar;
  const uint8_t* ptr = data_ + info.begin;
  auto options = at::TensorOptions().dtype(scalar);
  if (info.end == info.begin) return at::empty(info.shape, options);
  if (reinterpret_cast<uintptr_t>(ptr) % dtype_size(info.dtype) == 0) {
    auto keep = file_;
    // MAP_PRIVATE: writes into the returned tensor (e.g. training updates) stay private to this process.
    return at::from_blob(const_cast<uint8_t*>(ptr), info.shape, [keep](void*) {}, options);
  }
  auto out = at::empty(info.shape, options);
  std::memcpy(out.data_ptr(), ptr, info.end - info.begin);
  return out;
}

at::Tensor SafetensorsFile::get_f32(const std::string& name) const {
  at::Tensor t = get(name);
  return t.scalar_type() == at::kFloat ? t : t.to(at::kFloat);
}

WeightFiles::WeightFiles(std::vector<SafetensorsFile> files) : files_(std::move(files)) {
  for (size_t i = 0; i < files_.size(); ++i)
    for (const auto& [name, info] : files_[i].tensors()) index_[name] = i;
}

WeightFiles WeightFiles::open_dir(const fs::path& dir) {
  const fs::path single = dir / "model.safetensors";
  const fs::path index = dir / "model.safetensors.index.json";
  if (fs::exists(single)) return WeightFiles({SafetensorsFile::open(single)});
  PALIGN_CHECK(fs::exists(index), ErrorCode::kNotFound, "[runtime.WeightFiles] ", dir.string(),
               " has neither model.safetensors nor model.safetensors.index.json; point --model at a Hugging Face "
               "model directory");
  json j;
  try {
    std::ifstream in(index);
    j = json::parse(in);
  } catch (const json::exception& e) {
    PALIGN_THROW(ErrorCode::kInvalidArgument, "[runtime.WeightFiles] ", index.string(), " is not valid JSON (",
                 e.what(), ")");
  }
  PALIGN_CHECK(j.contains("weight_map") && j["weight_map"].is_object(), ErrorCode::kInvalidArgument,
               "[runtime.WeightFiles] ", index.string(), " has no weight_map object");
  std::map<std::string, size_t> shard_of;
  std::vector<SafetensorsFile> files;
  std::map<std::string, std::string> wanted;
  for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
    PALIGN_CHECK(it.value().is_string(), ErrorCode::kInvalidArgument, "[runtime.WeightFiles] ", index.string(),
                 ": weight_map['", it.key(), "'] is not a file name");
    const std::string shard = it.value().get<std::string>();
    PALIGN_CHECK(shard.find('/') == std::string::npos && shard != ".." && !shard.empty(),
                 ErrorCode::kInvalidArgument, "[runtime.WeightFiles] ", index.string(), ": shard name '", shard,
                 "' must be a plain file name");
    if (!shard_of.count(shard)) {
      shard_of[shard] = files.size();
      files.push_back(SafetensorsFile::open(dir / shard));
    }
    wanted[it.key()] = shard;
  }
  for (const auto& [name, shard] : wanted) {
    PALIGN_CHECK(files[shard_of[shard]].contains(name), ErrorCode::kInvalidArgument, "[runtime.WeightFiles] ",
                 index.string(), " places '", name, "' in ", shard, ", which does not hold it");
  }
  return WeightFiles(std::move(files));
}

std::vector<std::string> WeightFiles::names() const {
  std::vector<std::string> out;
  for (const auto& [name, file] : index_) out.push_back(name);
  return out;
}

const TensorInfo& WeightFiles::info(const std::string& name) const {
  auto it = index_.find(name);
  PALIGN_CHECK(it != index_.end(), ErrorCode::kNotFound, "[runtime.WeightFiles] missing tensor '", name, "'");
  return files_[it->second].tensors().at(name);
}

at::Tensor WeightFiles::get(const std::string& name) const {
  auto it = index_.find(name);
  PALIGN_CHECK(it != index_.end(), ErrorCode::kNotFound, "[runtime.WeightFiles] missing tensor '", name, "'");
  return files_[it->second].get(name);
}

at::Tensor WeightFiles::get_f32(const std::string& name) const {
  auto it = index_.find(name);
  PALIGN_CHECK(it != index_.end(), ErrorCode::kNotFound, "[runtime.WeightFiles] missing tensor '", name, "'");
  return files_[it->second].get_f32(name);
}

DType WeightFiles::dominant_dtype() const {
  std::map<DType, uint64_t> bytes;
  for (const auto& f : files_)
    for (const auto& [name, info] : f.tensors()) bytes[info.dtype] += info.end - info.begin;
  DType best = DType::kF32;
  uint64_t most = 0;
  for (const auto& [d, b] : bytes)
    if (b > most) most = b, best = d;
  return best;
}

void save_safetensors(const fs::path& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> contiguous;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    PALIGN_CHECK(name != "__metadata__" && !header.contains(name), ErrorCode::kInvalidArgument,
                 "[runtime.save_safetensors] duplicate or reserved tensor name '", name, "'");
    at::Tensor c = t.detach().to(at::kCPU).contiguous();
    const DType dtype = from_scalar(c.scalar_type());
    const uint64_t nbytes = static_cast<uint64_t>(c.numel()) * dtype_size(dtype);
    header[name] = {{"dtype", dtype_name(dtype)}, {"shape", c.sizes().vec()}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    contiguous.push_back(c);
  }
  std::string h = header.dump();
  while (h.size() % 8 != 0) h.push_back(' ');  // keeps the data buffer 8-byte aligned
  const fs::path tmp = path.string() + ".tmp";
  bool written = false;
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    PALIGN_CHECK(out.good(), ErrorCode::kIo, "[runtime.save_safetensors] cannot write ", tmp.string(),
                 "; check that the folder exists and is writable");
    uint64_t n = h.size();
    char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    out.write(len, 8);
    out.write(h.data(), static_cast<std::streamsize>(h.size()));
    for (const auto& c : contiguous)
      out.write(static_cast<const char*>(c.data_ptr()), static_cast<std::streamsize>(c.numel() * c.element_size()));
    out.flush();
    out.close();
    written = !out.fail();
  }
  std::error_code ec;
  if (written) fs::rename(tmp, path, ec);
  if (!written || ec) {
    // A full disk: leave neither a partial file nor the temporary one behind.
    std::error_code ignored;
    fs::remove(tmp, ignored);
    PALIGN_THROW(ErrorCode::kIo, "[runtime.save_safetensors] ",
                 written ? "cannot move " + tmp.string() + " to " + path.string() + ": " + ec.message()
                         : "writing " + tmp.string() + " failed",
                 "; check the free space and permissions of the folder");
  }
}

}  // namespace palign::runtime
