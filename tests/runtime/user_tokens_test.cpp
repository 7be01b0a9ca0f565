// P-DPO's user-token files: slots, virtual ids and the table by hand, a save/load round trip, and bad files.
#include "palign/runtime/user_tokens.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "palign/base/error.h"
#include "palign/runtime/model.h"
#include "palign/runtime/safetensors.h"
#include "temp_dir.h"
#include "test_util.h"

using namespace palign;
using namespace palign::runtime;
using palign::test::error_code_of;
using palign::test::TempDir;

namespace {

TEST(UserTokensFile, RoundTripsAndRejectsBadFiles) {
  const auto model = Model::load(test::hf_model("qwen2"));
  const int64_t V = model->config().vocab_size, D = model->config().hidden_size;
  UserTokens t = UserTokens::init(*model, {"ann", "bob"}, 3, 1);
  t.individual = at::randn({2, 3, D});
  EXPECT_EQ(t.slot("bob"), 2);
  EXPECT_EQ(t.slot("carl"), 0);
  EXPECT_EQ(t.slot(""), 0);
  EXPECT_EQ(t.prefix(2, V), (std::vector<int64_t>{V + 6, V + 7, V + 8}));
  const at::Tensor table = t.table();
  ASSERT_EQ(table.sizes(), (std::vector<int64_t>{9, D}));
  const double row_diff = (table[7] - (t.generic[1] + t.individual[1][1])).abs().max().item<double>();
  EXPECT_EQ(row_diff, 0.0);
  const TempDir tmp("user_tokens");
  const auto& dir = tmp.path();
  t.save(dir / kUserTokensFile);
  const UserTokens back = UserTokens::load(dir / kUserTokensFile, D);
  EXPECT_EQ(back.users, t.users);
  EXPECT_TRUE(at::equal(back.table(), table));
  EXPECT_EQ(error_code_of([&] { UserTokens::load(dir / "none.safetensors", D); }), ErrorCode::kNotFound);
  EXPECT_EQ(error_code_of([&] { UserTokens::load(dir / kUserTokensFile, D + 1); }), ErrorCode::kInvalidArgument);
  save_safetensors(dir / "other.safetensors", {{"generic", t.generic}});
  EXPECT_EQ(error_code_of([&] { UserTokens::load(dir / "other.safetensors", D); }), ErrorCode::kInvalidArgument);
}

}  // namespace
