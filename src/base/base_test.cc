#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "base/spec.h"
#include "base/error.h"
#include "base/fs.h"
#include "base/idmap.h"
#include "base/log.h"
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

// A pid that is certainly not running: a child that has exited and been reaped.
pid_t dead_pid() {
  pid_t p = ::fork();
  if (p == 0) _exit(0);
  int status = 0;
  ::waitpid(p, &status, 0);
  return p;
}

TEST(Fs, TmpNamePid) {
  EXPECT_EQ(fs::tmp_name_pid("out.tar.tmp-1234-99"), std::optional<pid_t>(1234));
  EXPECT_EQ(fs::tmp_name_pid("abc.json.tmp-7-x1y2"), std::optional<pid_t>(7));
  EXPECT_EQ(fs::tmp_name_pid("abc.tmp-12ab34cd"), std::nullopt);  // an old random suffix
  EXPECT_EQ(fs::tmp_name_pid("abc.tmp-12345678"), std::nullopt);
  EXPECT_EQ(fs::tmp_name_pid("abc.tmp--1-x"), std::nullopt);
  EXPECT_EQ(fs::tmp_name_pid("abc"), std::nullopt);
}

TEST(Fs, RemoveStaleTmpFiles) {
  auto dir = fs::make_temp_dir(testing::TempDir(), "ocib-base-");
  ASSERT_TRUE(dir.ok());
  fs::TempDir guard(*dir);
  // A leftover of this (live) process and one of a dead one: only the dead one's goes.
  std::string f = fs::join(*dir, "index.json");
  std::string mine = f + ".tmp-" + std::to_string(::getpid()) + "-a";
  std::string dead = f + ".tmp-" + std::to_string(dead_pid()) + "-b";
  std::string other = fs::join(*dir, "other.tmp-" + std::to_string(dead_pid()) + "-c");
  std::string legacy = f + ".tmp-abcdefgh";
  for (const auto& p : {mine, dead, other, legacy}) ASSERT_TRUE(fs::write_file_atomic(p, "x").ok());
  ASSERT_TRUE(fs::mkdirs(f + ".tmp-" + std::to_string(dead_pid()) + "-dir").ok());
  EXPECT_EQ(fs::remove_stale_tmp_files(*dir, "index.json"), 1u);
  EXPECT_TRUE(fs::exists(mine));
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(other));  // another destination's
  EXPECT_TRUE(fs::exists(legacy));
  EXPECT_EQ(fs::remove_stale_tmp_files(*dir, ""), 1u);
  EXPECT_FALSE(fs::exists(other));
}

TEST(Log, EscapeControlKeepsTextAndEscapesTerminalControls) {
  EXPECT_EQ(log::escape_control("plain\ttext ü €"), "plain\ttext ü €");
  EXPECT_EQ(log::escape_control("\x1b]0;pwned\x07"), "\\x1b]0;pwned\\x07");
  EXPECT_EQ(log::escape_control("a\nb\rc\x7f"), "a\\x0ab\\x0dc\\x7f");
  EXPECT_EQ(log::escape_control("\xc2\x9b" "31m"), "\\u009b31m");  // C1 CSI as UTF-8
  EXPECT_EQ(log::escape_control("\x9b" "31m"), "\\x9b31m");        // a raw 8-bit CSI
  EXPECT_EQ(log::escape_control("\xe2\x82"), "\\xe2\\x82");         // truncated sequence
  EXPECT_EQ(log::escape_control("\xc0\xaf"), "\\xc0\\xaf");         // overlong '/'
}

TEST(Log, PrintableCutsLongText) {
  EXPECT_EQ(log::printable("short"), "short");
  std::string longer(5000, 'A');
  std::string p = log::printable(longer, 200);
  EXPECT_EQ(p, std::string(200, 'A') + "... (5000 bytes)");
  // Never inside a UTF-8 character.
  std::string u = std::string(199, 'a') + "\xc3\xbc" + std::string(10, 'b');
  EXPECT_EQ(log::printable(u, 200), std::string(199, 'a') + "... (211 bytes)");
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

namespace ocib {
namespace {

TEST(Spec, CsvQuotesKeepCommas) {
  auto a = parse_typed_spec(R"(type=image,"name=r/a:1,r/b:1",push=true)");
  ASSERT_TRUE(a.ok()) << a.error().str();
  EXPECT_EQ(a->type, "image");
  EXPECT_EQ(a->get("name"), "r/a:1,r/b:1");
  EXPECT_EQ(a->get("push"), "true");
  auto b = parse_typed_spec(R"(type=local,dest="a ""b"",c")");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->get("dest"), R"(a "b",c)");
  EXPECT_FALSE(parse_typed_spec(R"(type=local,dest="open)").ok());
  EXPECT_FALSE(parse_typed_spec("dest=x").ok());       // no type
  EXPECT_FALSE(parse_typed_spec("type=oci,junk").ok());  // not key=value
}

TEST(Spec, DidYouMean) {
  EXPECT_EQ(did_you_mean("typ", {"type", "dest"}), "; did you mean \"type\"?");
  EXPECT_EQ(did_you_mean("bulid", {"build", "base"}), "; did you mean \"build\"?");
  EXPECT_EQ(did_you_mean("zzzzzz", {"build", "base"}), "");
  EXPECT_EQ(join({"a", "b", "c"}, ", "), "a, b, c");
}

}  // namespace
}  // namespace ocib
