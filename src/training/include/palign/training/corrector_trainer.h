// A learned corrector (`palign train corrector`): Aligner (Ji et al. 2024) — supervised fine-tuning of a LoRA adapter
// on preference pairs, the rejected answer in and the chosen one out — and, with objectives, MetaAligner (Yang et al.
// 2024): the same with the pair's dimension named in words in the input, so that at decoding time the objectives a
// user cares about select the correction (`--strategy correct`). The input is scoring::corrector_prompt; the fit is
// train_policy's sft (the mean token negative log-likelihood of the chosen answer given that input).
//
// OUT is a PEFT adapter directory with train_policy's palign_policy.json, plus palign_corrector.json
// {"format": "palign.corrector", "version": 1, "objectives": bool, "dimensions": [...]} (the dimensions it was trained
// to correct toward).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "palign/scoring/preference_data.h"
#include "palign/training/policy_trainer.h"

namespace palign::training {

inline constexpr const char* kCorrectorManifest = "palign_corrector.json";

// Each record as the corrector learns it: prompt = corrector_prompt(prompt, rejected, {dimension} when objectives),
// chosen as the target, rejected kept (sft ignores it). Throws kInvalidArgument, naming the record, for a record
// without a "dimension" when objectives.
std::vector<scoring::PreferenceRecord> corrector_records(const std::vector<scoring::PreferenceRecord>& records,
                                                         bool objectives);

// corrector_records, then train_policy with options.loss = sft into out, then palign_corrector.json. Throws as
// train_policy and corrector_records.
PolicyTrainReport train_corrector(const std::vector<scoring::PreferenceRecord>& records,
                                  const std::filesystem::path& model_dir, const std::filesystem::path& out,
                                  PolicyTrainOptions options, bool objectives);

}  // namespace palign::training
