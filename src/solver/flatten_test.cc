#include "solver/flatten.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "base/fs.h"

namespace ocib::solver::flatten {
namespace {

std::vector<std::string> chain_of(size_t n) {  // topmost first
  std::vector<std::string> c;
  for (size_t i = n; i > 0; --i) {
    char id[21];
    std::snprintf(id, sizeof id, "%020zx", i);
    c.push_back(id);
  }
  return c;
}

// A flat is named by the chain below it: the same prefix, the same id, in every chain that
// shares it; any other snapshot anywhere below gives another id.
TEST(Flatten, IdsNameTheWholeChainBelow) {
  std::vector<std::string> a = {"s1", "s2", "s3"}, b = {"s1", "s2", "x3"}, c = {"x1", "s2", "s3"};
  auto ia = flat_ids(a), ib = flat_ids(b), ic = flat_ids(c);
  ASSERT_EQ(ia.size(), 4u);
  EXPECT_EQ(ia[0], "");
  EXPECT_EQ(ia[2], ib[2]);
  EXPECT_NE(ia[3], ib[3]);
  EXPECT_NE(ia[2], ic[2]);
  EXPECT_NE(ia[1], ia[2]);
  EXPECT_EQ(ia[3].size(), 20u);
}

class FlattenerTest : public testing::Test {
 protected:
  void SetUp() override {
    auto d = fs::make_temp_dir(testing::TempDir(), "ocib-flatten-");
    ASSERT_TRUE(d.ok());
    dir_ = fs::TempDir(*d);
    auto s = store::Store::open(fs::join(*d, "root"));
    ASSERT_TRUE(s.ok());
    store_.emplace(std::move(*s));
  }
  void make_flat(const std::vector<std::string>& chain, size_t depth) {
    std::vector<std::string> bottom_up(chain.rbegin(), chain.rbegin() + static_cast<std::ptrdiff_t>(depth));
    auto d = store_->make_tmp_dir("flat-");
    ASSERT_TRUE(d.ok());
    ASSERT_TRUE(store_->commit_flat(*d, flat_ids(bottom_up).back(), bottom_up).ok());
  }
  fs::TempDir dir_;
  std::optional<store::Store> store_;
};

TEST_F(FlattenerTest, ShallowChainsAndDisabledStayAsTheyAre) {
  Policy p;
  p.after = 48;
  p.every = 16;
  Flattener f(*store_, IdMapping::detect(), p);
  auto c = chain_of(40);
  auto l = f.lowers(c);
  ASSERT_EQ(l.size(), 40u);
  EXPECT_EQ(l.front(), store_->snapshot_path(c.front()));
  EXPECT_EQ(l.back(), store_->snapshot_path(c.back()));
  p.enabled = false;
  Flattener off(*store_, IdMapping::detect(), p);
  EXPECT_EQ(off.lowers(chain_of(600)).size(), 600u);
}

// A deep chain stacks the snapshots above its deepest ready flat, then the flat.
TEST_F(FlattenerTest, DeepChainStacksOnItsDeepestFlat) {
  Policy p;
  p.after = 8;
  p.every = 16;
  auto c = chain_of(40);
  make_flat(c, 16);
  make_flat(c, 32);
  Flattener f(*store_, IdMapping::detect(), p);
  auto l = f.lowers(c);
  ASSERT_EQ(l.size(), 9u);
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(l[i], store_->snapshot_path(c[i]));
  std::vector<std::string> bottom_up(c.rbegin(), c.rbegin() + 32);
  EXPECT_EQ(l.back(), store_->flat_path(flat_ids(bottom_up).back()));
  // Another chain with the same bottom 16 (and nothing else in common) uses that flat.
  auto other = chain_of(16);
  other.insert(other.begin(), {"ffffffffffffffffff01", "ffffffffffffffffff02", "ffffffffffffffffff03"});
  p.after = 2;
  Flattener g(*store_, IdMapping::detect(), p);
  auto lo = g.lowers(other);
  ASSERT_EQ(lo.size(), 4u);
  EXPECT_EQ(lo.back(), store_->flat_path(flat_ids(std::vector<std::string>(c.rbegin(), c.rbegin() + 16)).back()));
}

TEST(FlattenPolicy, LimitsFromTheKernelAndEnvironment) {
  ::setenv("OCIB_FLATTEN_MAX", "30", 1);
  ::setenv("OCIB_FLATTEN_EVERY", "7", 1);
  Policy p = Policy::for_store("/tmp");
  EXPECT_EQ(p.max_lowers, 30u);
  EXPECT_EQ(p.every, 7u);
  EXPECT_TRUE(p.enabled);
  ::unsetenv("OCIB_FLATTEN_MAX");
  ::unsetenv("OCIB_FLATTEN_EVERY");
  p = Policy::for_store("/tmp");
  EXPECT_LE(p.max_lowers, 500u);
  EXPECT_GE(p.max_lowers, 60u);  // a short store path fits many in a page, too
  EXPECT_EQ(p.every, 16u);
}

}  // namespace
}  // namespace ocib::solver::flatten
