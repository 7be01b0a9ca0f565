// Directories written whole and then moved into place: training checkpoints (committed by two renames, recovered
// when a run was killed between them) and output directories. Private to palign_training.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace torch::optim {
class Optimizer;
}

namespace palign::training::detail {

// Writes the checkpoint `dir` atomically: write(tmp) fills a fresh dir.tmp, which then replaces dir (dir -> dir.old,
// dir.tmp -> dir, dir.old removed). A kill at any point leaves a complete checkpoint in dir, dir.old or dir.tmp, which
// recover_checkpoint_dir finds. On failure (a full disk) dir.tmp is removed and kIo is thrown naming the folder;
// dir is left as it was. where names the caller in messages ("training.lm").
void write_checkpoint_dir(const std::filesystem::path& dir,
                          const std::function<void(const std::filesystem::path& tmp)>& write, std::string_view where);

// Call before reading the checkpoint `dir`. When dir is missing but an interrupted commit left a complete dir.tmp
// (newer) or dir.old (state.json there parses), renames it to dir and says so on stderr. Returns whether dir holds a
// state.json afterwards.
bool recover_checkpoint_dir(const std::filesystem::path& dir, std::string_view where);

// torch::load of an optimizer state, with a damaged or truncated file reported as kInvalidArgument naming the file
// and what to do, instead of libtorch's internal error.
void load_optimizer(torch::optim::Optimizer& opt, const std::filesystem::path& file, std::string_view where);

// An output directory built beside its destination (OUT.tmp) and moved into place by commit(), so that a failure
// (a full disk, a bad input found late) leaves no half-written OUT. The destructor removes OUT.tmp unless committed.
// When OUT already exists, commit() moves each finished entry into it, replacing entries of the same name and
// keeping the others.
class StagedDir {
 public:
  // Throws kIo naming `out` when its folder cannot be created or written.
  StagedDir(std::filesystem::path out, std::string_view where);
  StagedDir(const StagedDir&) = delete;
  StagedDir& operator=(const StagedDir&) = delete;
  ~StagedDir();
  const std::filesystem::path& path() const { return tmp_; }
  // Throws kIo when the entries cannot be moved.
  void commit();

 private:
  std::filesystem::path out_, tmp_;
  std::string where_;
  bool committed_ = false;
};

}  // namespace palign::training::detail
