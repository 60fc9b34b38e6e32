#include <gtest/gtest.h>

#include "base/error.h"
#include "base/fs.h"
#include "base/idmap.h"
#include "base/sha256.h"

namespace ocib {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return Error::invalid("not positive");
  return v;
}

Result<int> doubled(int v) {
  OCIB_ASSIGN_OR_RETURN(int x, parse_positive(v));
  return x * 2;
}

TEST(Error, PropagatesThroughMacros) {
  EXPECT_EQ(*doubled(4), 8);
  auto r = doubled(-1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(r.error().message(), "not positive");
}

TEST(Error, StrIncludesLocationAndContext) {
  Error e = Error::at({"Dockerfile", 12, 0}, "unknown instruction FRM");
  e.wrap("stage 1");
  EXPECT_EQ(e.str(), "Dockerfile:12: stage 1: unknown instruction FRM");
}

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(Sha256::hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256::hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 h;
  h.update("a");
  h.update("bc");
  EXPECT_EQ(h.hex_final(), Sha256::hex("abc"));
}

TEST(Fs, CleanJoinDirname) {
  EXPECT_EQ(fs::clean("/a/./b//../c/"), "/a/c");
  EXPECT_EQ(fs::clean("/../.."), "/");
  EXPECT_EQ(fs::clean("a/../../b"), "../b");
  EXPECT_EQ(fs::clean(""), ".");
  EXPECT_EQ(fs::join("/a/", "/b"), "/a/b");
  EXPECT_EQ(fs::dirname("/a/b"), "/a");
  EXPECT_EQ(fs::dirname("/a"), "/");
  EXPECT_EQ(fs::basename("/a/b/"), "b");
}

TEST(Fs, AtomicWriteAndRemoveAll) {
  auto dir = fs::make_temp_dir(testing::TempDir(), "ocib-base-");
  ASSERT_TRUE(dir.ok());
  fs::TempDir guard(*dir);
  std::string f = fs::join(*dir, "x/y/file");
  ASSERT_TRUE(fs::mkdirs(fs::dirname(f)).ok());
  ASSERT_TRUE(fs::write_file_atomic(f, "hello").ok());
  EXPECT_EQ(*fs::read_file(f), "hello");
  ASSERT_TRUE(fs::write_file_atomic(f, "again").ok());
  EXPECT_EQ(*fs::read_file(f), "again");
  ASSERT_TRUE(fs::remove_all(fs::join(*dir, "x")).ok());
  EXPECT_FALSE(fs::exists(f));
  EXPECT_FALSE(fs::read_file(f).ok());
}

TEST(IdMap, MapsBothWays) {
  IdMapping m;
  m.uids = {{0, 1000, 1}, {1, 100000, 65536}};
  EXPECT_EQ(m.host_to_container_uid(1000), 0u);
  EXPECT_EQ(m.host_to_container_uid(100000), 1u);
  EXPECT_EQ(m.host_to_container_uid(100999), 1000u);
  EXPECT_FALSE(m.host_to_container_uid(5).has_value());
  EXPECT_EQ(m.container_to_host_uid(1000), 100999u);
  EXPECT_EQ(format_id_map(m.uids), "0 1000 1\n1 100000 65536\n");
}

}  // namespace
}  // namespace ocib
