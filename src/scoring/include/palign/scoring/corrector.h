// The text a learned corrector reads (Aligner, Ji et al. 2024; MetaAligner, Yang et al. 2024): a question and a draft
// answer in, a better answer out — MetaAligner's also names, in words, the objectives to correct toward. One format
// shared by the trainer (training/corrector_trainer.h: the rejected answer in, the chosen one as the target) and the
// correct strategy (decoding: the policy's draft in).
#pragma once

#include <string>
#include <vector>

namespace palign::scoring {

// A preference dimension in words: "topic.computers" → "about computers", "reading_ease" → "reading ease" (other
// underscores become spaces; anything else as it is).
std::string describe_objective(const std::string& dimension);

// "Question: {prompt}\nAnswer:{answer}\nA better answer:" — with objectives, "A better answer (more {o1}, {o2}):",
// each objective described by describe_objective. The answer follows "Answer:" as it is (a continuation starting with
// its own space, as the data's responses do), and so does the target after the final colon.
std::string corrector_prompt(const std::string& prompt, const std::string& answer,
                             const std::vector<std::string>& objectives = {});

}  // namespace palign::scoring
