// Runs every tests/dockerfile/NNN-name.Dockerfile through parse() and compares to_json() of the
// AST (or the error string) with NNN-name.expected.json. The expectations are a spec written
// from Docker's documented behaviour, not snapshots.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "dockerfile/dockerfile.h"

namespace ocib::dockerfile {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<fs::path> corpus() {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(OCIB_DOCKERFILE_CORPUS)) {
    if (e.path().extension() == ".Dockerfile") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(Corpus, HasEnoughCases) { EXPECT_GE(corpus().size(), 60u); }

TEST(Corpus, ParsesAsExpected) {
  for (const fs::path& df : corpus()) {
    SCOPED_TRACE(df.filename().string());
    fs::path exp_path = df;
    exp_path.replace_extension(".expected.json");
    ASSERT_TRUE(fs::exists(exp_path)) << "missing " << exp_path;
    nlohmann::json expected = nlohmann::json::parse(slurp(exp_path), nullptr, false);
    ASSERT_FALSE(expected.is_discarded()) << "bad JSON in " << exp_path;
    auto r = parse(slurp(df), "Dockerfile");
    nlohmann::json actual;
    if (r.ok()) {
      actual = to_json(*r);
    } else {
      actual = {{"error", r.error().str()}};
    }
    EXPECT_EQ(actual, expected) << "actual:\n" << actual.dump(2) << "\nexpected:\n"
                                << expected.dump(2);
  }
}

}  // namespace
}  // namespace ocib::dockerfile
