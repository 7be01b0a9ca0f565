// Corrector prompts (see corrector.h).
#include "palign/scoring/corrector.h"

#include <algorithm>

namespace palign::scoring {

std::string describe_objective(const std::string& dimension) {
  std::string out = dimension.rfind("topic.", 0) == 0 ? "about " + dimension.substr(6) : dimension;
  std::replace(out.begin(), out.end(), '_', ' ');
  return out;
}

std::string corrector_prompt(const std::string& prompt, const std::string& answer,
                             const std::vector<std::string>& objectives) {
  std::string toward;
  for (const auto& o : objectives) toward += (toward.empty() ? "" : ", ") + describe_objective(o);
  return "Question: " + prompt + "\nAnswer:" + answer + "\nA better answer" +
         (toward.empty() ? std::string() : " (more " + toward + ")") + ":";
}

}  // namespace palign::scoring
