// Aligner / MetaAligner correctors (see corrector_trainer.h).
#include "palign/training/corrector_trainer.h"

#include <set>

#include "palign/base/error.h"
#include "palign/base/json.h"
#include "palign/scoring/corrector.h"

namespace palign::training {

std::vector<scoring::PreferenceRecord> corrector_records(const std::vector<scoring::PreferenceRecord>& records,
                                                         bool objectives) {
  std::vector<scoring::PreferenceRecord> out;
  out.reserve(records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    PALIGN_CHECK(!objectives || !r.dimension.empty(), ErrorCode::kInvalidArgument, "[training.corrector] record ",
                 i + 1, " has no \"dimension\"; --objectives conditions the corrector on each pair's dimension");
    scoring::PreferenceRecord c = r;
    c.prompt = scoring::corrector_prompt(
        r.prompt, r.rejected, objectives ? std::vector<std::string>{r.dimension} : std::vector<std::string>{});
    out.push_back(std::move(c));
  }
  return out;
}

PolicyTrainReport train_corrector(const std::vector<scoring::PreferenceRecord>& records,
                                  const std::filesystem::path& model_dir, const std::filesystem::path& out,
                                  PolicyTrainOptions options, bool objectives) {
  options.loss = PolicyLoss::kSft;
  PolicyTrainReport report = train_policy(corrector_records(records, objectives), model_dir, out, options);
  std::set<std::string> dimensions;
  if (objectives)
    for (const auto& r : records) dimensions.insert(r.dimension);
  write_json_file(out / kCorrectorManifest,
                  {{"format", "palign.corrector"},
                   {"version", 1},
                   {"objectives", objectives},
                   {"dimensions", std::vector<std::string>(dimensions.begin(), dimensions.end())}},
                  "training.corrector");
  return report;
}

}  // namespace palign::training
