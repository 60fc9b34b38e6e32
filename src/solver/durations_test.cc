#include "solver/durations.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "base/fs.h"

namespace ocib::solver {
namespace {

std::string temp_dir() {
  char tmpl[] = "/tmp/ocib-durations-XXXXXX";
  const char* d = ::mkdtemp(tmpl);
  EXPECT_NE(d, nullptr);
  return d ? d : "";
}

TEST(Durations, RecordedByKeyThenByName) {
  std::string root = temp_dir();
  {
    Durations d = Durations::load(root);
    EXPECT_FALSE(d.estimate("k1", "[a 2/2] RUN make").has_value());
    d.record("k1", "[a 2/2] RUN make", 3.5);
    d.save();
  }
  Durations d = Durations::load(root);
  EXPECT_EQ(d.estimate("k1", "other"), 3.5);
  // An edited instruction has a new key; the same step name is the best guess.
  EXPECT_EQ(d.estimate("k2", "[a 2/2] RUN make"), 3.5);
  EXPECT_FALSE(d.estimate("k3", "[b 2/2] RUN make").has_value());
  (void)fs::remove_all(root);
}

TEST(Durations, ConcurrentSavesKeepEachOthersEntries) {
  std::string root = temp_dir();
  std::vector<std::thread> ts;
  for (int i = 0; i < 8; ++i) {
    ts.emplace_back([&root, i] {
      Durations d = Durations::load(root);
      d.record("key" + std::to_string(i), "name" + std::to_string(i), i);
      d.save();
    });
  }
  for (auto& t : ts) t.join();
  Durations d = Durations::load(root);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(d.estimate("key" + std::to_string(i), "-"), double(i)) << i;
  (void)fs::remove_all(root);
}

TEST(Durations, BoundedOldestDropped) {
  std::string root = temp_dir();
  Durations d = Durations::load(root);
  for (size_t i = 0; i < Durations::kMaxEntries + 10; ++i) d.record("k" + std::to_string(i), "n" + std::to_string(i), 1);
  d.save();
  Durations back = Durations::load(root);
  EXPECT_FALSE(back.estimate("k0", "n0").has_value());
  EXPECT_TRUE(back.estimate("k" + std::to_string(Durations::kMaxEntries + 9), "-").has_value());
  (void)fs::remove_all(root);
}

TEST(Durations, CorruptFileIsEmpty) {
  std::string root = temp_dir();
  ASSERT_TRUE(fs::write_file_atomic(root + "/durations.json", "{not json").ok());
  Durations d = Durations::load(root);
  EXPECT_FALSE(d.estimate("k", "n").has_value());
  (void)fs::remove_all(root);
}

}  // namespace
}  // namespace ocib::solver
