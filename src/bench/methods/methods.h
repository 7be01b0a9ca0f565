// The bench's built-in methods (one file each in this folder) and helpers they share. Private to palign_bench.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "palign/bench/method.h"

namespace palign::bench {

std::unique_ptr<Method> make_random_method();
std::unique_ptr<Method> make_sample_method();
std::unique_ptr<Method> make_population_bt_method();
std::unique_ptr<Method> make_retrieval_method();
std::unique_ptr<Method> make_oracle_method();
std::unique_ptr<Method> make_population_oracle_method();
std::unique_ptr<Method> make_prm_method();
std::unique_ptr<Method> make_pal_method();
std::unique_ptr<Method> make_vpl_method();
std::unique_ptr<Method> make_multi_linear_method();
std::unique_ptr<Method> make_arm_linear_method();

// Best-of-N over a prompt's pooled samples: the highest-scoring sample's text (the first on ties), charged with the
// whole pool's tokens and time, the batch's forward passes plus extra_passes (e.g. one batched scoring pass).
Response best_of_pool(const std::vector<Response>& pool, const std::function<double(const Response&)>& score,
                      int64_t extra_passes = 0);

}  // namespace palign::bench
