#include "registry/reference.h"

#include <gtest/gtest.h>

namespace ocib::registry {
namespace {

const std::string kD = "sha256:" + std::string(64, 'a');

TEST(ReferenceTest, DockerHubNormalisation) {
  auto r = Reference::parse("busybox");
  ASSERT_TRUE(r.ok()) << r.error().str();
  EXPECT_EQ(r->registry, "docker.io");
  EXPECT_EQ(r->repository, "library/busybox");
  EXPECT_EQ(r->tag, "latest");
  EXPECT_EQ(r->digest, "");
  EXPECT_EQ(r->str(), "docker.io/library/busybox:latest");
  EXPECT_EQ(r->ref_or_tag(), "latest");

  auto u = Reference::parse("user/app:1.2");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->str(), "docker.io/user/app:1.2");
  auto i = Reference::parse("index.docker.io/library/alpine");
  ASSERT_TRUE(i.ok());
  EXPECT_EQ(i->str(), "docker.io/library/alpine:latest");
  auto d = Reference::parse("docker.io/alpine:3");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->str(), "docker.io/library/alpine:3");
}

TEST(ReferenceTest, HostPortAndDigest) {
  auto r = Reference::parse("127.0.0.1:5000/ns/name:v1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->registry, "127.0.0.1:5000");
  EXPECT_EQ(r->repository, "ns/name");
  EXPECT_EQ(r->tag, "v1");

  auto p = Reference::parse("localhost:5000/app");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->registry, "localhost:5000");
  EXPECT_EQ(p->tag, "latest");
  auto l = Reference::parse("localhost/app");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->registry, "localhost");

  auto g = Reference::parse("ghcr.io/o/r@" + kD);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->tag, "");
  EXPECT_EQ(g->digest, kD);
  EXPECT_EQ(g->ref_or_tag(), kD);
  EXPECT_EQ(g->str(), "ghcr.io/o/r@" + kD);

  auto b = Reference::parse("busybox:1@" + kD);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->tag, "1");
  EXPECT_EQ(b->ref_or_tag(), kD);
  EXPECT_EQ(b->str(), "docker.io/library/busybox:1@" + kD);
}

TEST(ReferenceTest, Rejects) {
  for (const char* s : {"", "UPPER/case", "a@sha256:123", "a:b:c", "host:5000/", "a/:tag",
                        "a::", "a:-bad", "a//b", "-a"}) {
    auto r = Reference::parse(s);
    EXPECT_FALSE(r.ok()) << s;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
    }
  }
}

}  // namespace
}  // namespace ocib::registry
