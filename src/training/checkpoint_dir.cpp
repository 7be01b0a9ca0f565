// Checkpoint and output directories written whole, then renamed into place (see checkpoint_dir.h).
#include "checkpoint_dir.h"

#include <torch/torch.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "palign/base/error.h"

namespace palign::training::detail {

namespace fs = std::filesystem;

namespace {

fs::path sibling(const fs::path& dir, const char* suffix) {
  fs::path p = dir;
  if (!p.has_filename()) p = p.parent_path();  // "out/" -> "out"
  return p.string() + suffix;
}

// A checkpoint folder is complete when its state.json, written last, parses.
bool complete(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_regular_file(dir / "state.json", ec)) return false;
  std::ifstream in(dir / "state.json");
  return nlohmann::json::accept(in);
}

}  // namespace

void write_checkpoint_dir(const fs::path& dir, const std::function<void(const fs::path& tmp)>& write,
                          std::string_view where) {
  const fs::path tmp = sibling(dir, ".tmp"), old = sibling(dir, ".old");
  auto fail = [&](const std::string& why) {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    PALIGN_THROW(ErrorCode::kIo, "[", where, "] cannot write the checkpoint ", dir.string(), " (", why,
                 "); check the free space and permissions of its folder");
  };
  try {
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    write(tmp);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kIo) fail(e.what());
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    throw;
  } catch (const c10::Error& e) {
    fail(e.what_without_backtrace());
  } catch (const std::exception& e) {
    fail(e.what());
  }
  // The commit. Between the two renames only dir.old (and dir.tmp) hold the checkpoint: recover_checkpoint_dir.
  std::error_code ec;
  fs::remove_all(old, ec);
  if (fs::exists(dir)) fs::rename(dir, old, ec);
  if (!ec) fs::rename(tmp, dir, ec);
  PALIGN_CHECK(!ec, ErrorCode::kIo, "[", where, "] cannot move ", tmp.string(), " to ", dir.string(), ": ",
               ec.message());
  fs::remove_all(old, ec);
}

bool recover_checkpoint_dir(const fs::path& dir, std::string_view where) {
  std::error_code ec;
  if (fs::exists(dir / "state.json", ec)) return true;
  if (fs::exists(dir, ec)) return false;
  for (const char* suffix : {".tmp", ".old"}) {
    const fs::path candidate = sibling(dir, suffix);
    if (!complete(candidate)) continue;
    fs::rename(candidate, dir, ec);
    PALIGN_CHECK(!ec, ErrorCode::kIo, "[", where, "] the checkpoint ", dir.string(),
                 " was interrupted while being saved; cannot restore it from ", candidate.string(), ": ", ec.message(),
                 "; rename that folder to ", dir.string(), " yourself");
    std::fprintf(stderr, "palign: %s was interrupted while being saved; restored it from %s\n", dir.string().c_str(),
                 candidate.string().c_str());
    return true;
  }
  return false;
}

void load_optimizer(torch::optim::Optimizer& opt, const fs::path& file, std::string_view where) {
  PALIGN_CHECK(fs::is_regular_file(file), ErrorCode::kInvalidArgument, "[", where, "] the checkpoint has no ",
               file.string(), "; delete ", file.parent_path().string(), " to start over");
  try {
    torch::load(opt, file.string());
  } catch (const std::exception& e) {
    std::string why = e.what();
    if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) why = c10->what_without_backtrace();
    if (const size_t nl = why.find('\n'); nl != std::string::npos) why.resize(nl);
    PALIGN_THROW(ErrorCode::kInvalidArgument, "[", where, "] ", file.string(), " is damaged or truncated (", why,
                 "); delete ", file.parent_path().string(), " to start over");
  }
}

StagedDir::StagedDir(fs::path out, std::string_view where)
    : out_(std::move(out)), tmp_(sibling(out_, ".tmp")), where_(where) {
  std::error_code ec;
  fs::remove_all(tmp_, ec);
  ec.clear();
  fs::create_directories(tmp_, ec);
  const bool ok = !ec && fs::is_directory(tmp_) && std::ofstream(tmp_ / ".write_test").good();
  fs::remove(tmp_ / ".write_test", ec);
  if (!ok) {
    fs::remove_all(tmp_, ec);
    PALIGN_THROW(ErrorCode::kIo, "[", where_, "] cannot write ", out_.string(), " (creating ", tmp_.string(),
                 " failed); pass an --out in a writable folder");
  }
}

StagedDir::~StagedDir() {
  if (committed_) return;
  std::error_code ec;
  fs::remove_all(tmp_, ec);
}

void StagedDir::commit() {
  std::error_code ec;
  if (!fs::exists(out_, ec)) {
    fs::rename(tmp_, out_, ec);
  } else {
    PALIGN_CHECK(fs::is_directory(out_), ErrorCode::kIo, "[", where_, "] ", out_.string(),
                 " exists and is not a folder; pass another --out");
    for (const auto& entry : fs::directory_iterator(tmp_)) {
      const fs::path target = out_ / entry.path().filename();
      if (fs::is_directory(target, ec) && !fs::is_symlink(target, ec)) fs::remove_all(target, ec);
      ec.clear();
      fs::rename(entry.path(), target, ec);
      if (ec) break;
    }
    if (!ec) fs::remove_all(tmp_, ec);
  }
  PALIGN_CHECK(!ec, ErrorCode::kIo, "[", where_, "] cannot move the finished files from ", tmp_.string(), " to ",
               out_.string(), ": ", ec.message());
  committed_ = true;
}

}  // namespace palign::training::detail
