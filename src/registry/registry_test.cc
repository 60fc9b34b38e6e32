#include "registry/registry.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "base/fs.h"
#include "base/sha256.h"
#include "registry/auth.h"
#include "registry/http.h"
#include "registry/test_server.h"

extern char** environ;

namespace ocib::registry {
namespace {

using testing::TestRequest;
using testing::TestResponse;
using testing::TestServer;

fs::TempDir temp_dir() {
  auto d = fs::make_temp_dir("/tmp", "ocib-reg-");
  if (!d.ok()) std::abort();
  return fs::TempDir(*d);
}

std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// A content store over a directory: blobs/<hex>, temps in tmp/.
struct DirStore {
  std::string dir;
  std::mutex mu;
  int n = 0;
  explicit DirStore(std::string d) : dir(std::move(d)) {
    (void)fs::mkdirs(fs::join(dir, "blobs"));
    (void)fs::mkdirs(fs::join(dir, "tmp"));
  }
  std::string path(const std::string& digest) const {
    return fs::join(dir, "blobs/" + digest.substr(7));
  }
  BlobSink sink() {
    BlobSink s;
    s.temp_path = [this]() -> Result<std::string> {
      std::lock_guard<std::mutex> lk(mu);
      return fs::join(dir, "tmp/t" + std::to_string(n++));
    };
    s.commit = [this](const std::string& tmp, const std::string& digest) -> Status {
      if (::rename(tmp.c_str(), path(digest).c_str()) != 0) {
        return Error::from_errno("rename", errno);
      }
      return {};
    };
    s.has = [this](const std::string& digest) { return fs::exists(path(digest)); };
    return s;
  }
  std::string add(const std::string& bytes) {
    std::string d = oci::digest_of(bytes);
    EXPECT_TRUE(fs::write_file_atomic(path(d), bytes).ok());
    return d;
  }
  size_t count(const std::string& sub) const {
    size_t k = 0;
    DIR* d = ::opendir(fs::join(dir, sub).c_str());
    while (dirent* e = d ? ::readdir(d) : nullptr) k += e->d_name[0] != '.';
    if (d) ::closedir(d);
    return k;
  }
};

// A small image: config + two layers (the second bigger than a chunk).
struct TestImage {
  oci::Descriptor config;
  std::vector<oci::Descriptor> layers;
  std::string manifest;
  std::vector<oci::Descriptor> blobs() const {
    std::vector<oci::Descriptor> b = layers;
    b.insert(b.begin(), config);
    return b;
  }
};

TestImage make_image(DirStore& st, unsigned seed, const std::string& arch = "amd64") {
  TestImage img;
  std::string cfg =
      R"({"architecture":")" + arch + R"(","os":"linux","seed":)" + std::to_string(seed) + "}";
  img.config = {oci::kMediaTypeConfig, st.add(cfg), static_cast<int64_t>(cfg.size()), {}, {}};
  for (size_t size : {size_t{3000}, size_t{200000}}) {
    std::string l = random_bytes(size, seed * 31 + static_cast<unsigned>(size));
    img.layers.push_back(
        {oci::kMediaTypeLayerGzip, st.add(l), static_cast<int64_t>(l.size()), {}, {}});
  }
  img.manifest = oci::canonical(oci::make_manifest(img.config, img.layers));
  return img;
}

oci::Platform amd64() {
  oci::Platform p;
  p.architecture = "amd64";
  return p;
}

// ---- platform selection -------------------------------------------------------------------

TEST(SelectPlatformTest, VariantAware) {
  auto desc = [](const char* digest_char, const char* arch, const char* variant) {
    oci::Descriptor d;
    d.digest = "sha256:" + std::string(64, digest_char[0]);
    d.platform = oci::Platform{"linux", arch, variant};
    return d;
  };
  std::vector<oci::Descriptor> ms = {desc("a", "amd64", ""), desc("b", "arm", "v6"),
                                     desc("c", "arm", "v7"), desc("d", "arm64", ""),
                                     desc("e", "unknown", "")};
  ms[4].platform->os = "unknown";
  auto r = select_platform(ms, oci::Platform{"linux", "arm", "v7"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->digest[7], 'c');
  r = select_platform(ms, oci::Platform{"linux", "arm64", "v8"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->digest[7], 'd');
  r = select_platform(ms, oci::Platform{"linux", "s390x", ""});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("linux/arm/v7"), std::string::npos);
  EXPECT_EQ(r.error().message().find("unknown"), std::string::npos);
}

// ---- fake registries on loopback --------------------------------------------------------

// Serves one image from memory; the first GET of the big layer drops the connection halfway.
class FakeRegistry {
 public:
  explicit FakeRegistry(DirStore& st, const TestImage& img) {
    blobs_[img.config.digest] = *fs::read_file(st.path(img.config.digest));
    for (const auto& l : img.layers) blobs_[l.digest] = *fs::read_file(st.path(l.digest));
    manifest_ = img.manifest;
    big_ = img.layers[1].digest;
  }
  TestResponse handle(const TestRequest& r) {
    std::lock_guard<std::mutex> lk(mu_);
    requests_.push_back(r.method + " " + r.target +
                        (r.headers.count("range") ? " " + r.headers.at("range") : ""));
    if (!bearer_token_.empty()) {
      if (r.target.rfind("/token", 0) == 0) {
        token_requests_++;
        last_token_query_ = r.target;
        return {200,
                {{"Content-Type", "application/json"}},
                R"({"token":")" + bearer_token_ + R"(","expires_in":300})",
                -1};
      }
      auto a = r.headers.find("authorization");
      if (a == r.headers.end() || a->second != "Bearer " + bearer_token_) {
        return {
            401,
            {{"WWW-Authenticate", "Bearer realm=\"http://" + self_ +
                                      "/token\",service=\"fake\",scope=\"repository:x/y:pull\""}},
            "{}",
            -1};
      }
    }
    if (r.target == "/v2/x/y/manifests/v1") {
      return {200,
              {{"Content-Type", oci::kMediaTypeManifest},
               {"Docker-Content-Digest", oci::digest_of(manifest_)}},
              manifest_,
              -1};
    }
    const std::string prefix = "/v2/x/y/blobs/";
    if (r.target.rfind(prefix, 0) == 0) {
      std::string d = r.target.substr(prefix.size());
      auto it = blobs_.find(d);
      if (it == blobs_.end()) return {404, {}, "{}", -1};
      std::string body = it->second;
      if (auto rg = r.headers.find("range"); rg != r.headers.end()) {
        size_t from = std::stoul(rg->second.substr(6));
        return {206,
                {{"Content-Range", "bytes " + std::to_string(from) + "-" +
                                       std::to_string(body.size() - 1) + "/" +
                                       std::to_string(body.size())}},
                body.substr(from),
                -1};
      }
      if (d == big_ && drop_next_big_) {
        drop_next_big_ = false;
        return {200, {}, body, static_cast<long>(body.size() / 2)};
      }
      return {200, {}, body, -1};
    }
    return {404, {}, "{}", -1};
  }
  std::mutex mu_;
  std::map<std::string, std::string> blobs_;
  std::string manifest_, big_, self_, bearer_token_, last_token_query_;
  bool drop_next_big_ = true;
  int token_requests_ = 0;
  std::vector<std::string> requests_;
};

TEST(FakeRegistryTest, DroppedConnectionResumes) {
  auto dir = temp_dir();
  DirStore src(fs::join(dir.path(), "src"));
  TestImage img = make_image(src, 1);
  FakeRegistry fake(src, img);
  TestServer server([&](const TestRequest& r) { return fake.handle(r); });
  Options o;
  o.insecure_hosts = {server.host()};
  o.backoff_ms = 10;
  Client c(o);
  DirStore dst(fs::join(dir.path(), "dst"));
  auto ref = Reference::parse(server.host() + "/x/y:v1");
  ASSERT_TRUE(ref.ok());
  auto p = c.pull(*ref, amd64(), dst.sink());
  ASSERT_TRUE(p.ok()) << p.error().str();
  EXPECT_EQ(p->manifest_digest, oci::digest_of(img.manifest));
  EXPECT_EQ(*fs::read_file(dst.path(img.layers[1].digest)), fake.blobs_[img.layers[1].digest]);
  EXPECT_EQ(c.stats().downloaded, 3);
  bool resumed = false;
  for (const auto& r : fake.requests_) resumed |= r.find("bytes=100000-") != std::string::npos;
  EXPECT_TRUE(resumed) << "expected a Range request resuming at the drop";
  EXPECT_EQ(dst.count("tmp"), 0u);
}

// What a registry cache import does: the manifest and config first, then single layers on a hit.
TEST(FakeRegistryTest, ManifestOnlyThenSingleBlobs) {
  auto dir = temp_dir();
  DirStore src(fs::join(dir.path(), "src"));
  TestImage img = make_image(src, 2);
  FakeRegistry fake(src, img);
  TestServer server([&](const TestRequest& r) { return fake.handle(r); });
  Options o;
  o.insecure_hosts = {server.host()};
  o.backoff_ms = 10;
  Client c(o);
  DirStore dst(fs::join(dir.path(), "dst"));
  auto ref = Reference::parse(server.host() + "/x/y:v1");
  ASSERT_TRUE(ref.ok());
  auto m = c.pull_manifest(*ref, amd64(), dst.sink());
  ASSERT_TRUE(m.ok()) << m.error().str();
  EXPECT_EQ(m->manifest_digest, oci::digest_of(img.manifest));
  EXPECT_EQ(m->config_digest, img.config.digest);
  EXPECT_EQ(m->config_bytes, fake.blobs_[img.config.digest]);
  ASSERT_EQ(m->layers.size(), 2u);
  EXPECT_EQ(c.stats().downloaded, 1);  // the config only
  EXPECT_TRUE(fs::exists(dst.path(img.config.digest)));
  EXPECT_FALSE(fs::exists(dst.path(img.layers[0].digest)));
  EXPECT_FALSE(fs::exists(dst.path(img.layers[1].digest)));

  // One layer (its first transfer drops halfway and resumes); the other stays remote.
  ASSERT_TRUE(c.pull_blob(*ref, img.layers[1], dst.sink()).ok());
  EXPECT_EQ(*fs::read_file(dst.path(img.layers[1].digest)), fake.blobs_[img.layers[1].digest]);
  EXPECT_FALSE(fs::exists(dst.path(img.layers[0].digest)));
  // Present already: no request.
  int before = c.stats().downloaded;
  ASSERT_TRUE(c.pull_blob(*ref, img.layers[1], dst.sink()).ok());
  EXPECT_EQ(c.stats().downloaded, before);

  // A descriptor whose size does not match what the registry serves: refused, nothing kept.
  oci::Descriptor wrong = img.layers[0];
  wrong.size -= 1;
  auto bad = c.pull_blob(*ref, wrong, dst.sink());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), Errc::kCorrupt) << bad.error().str();
  EXPECT_FALSE(fs::exists(dst.path(img.layers[0].digest)));
  // A blob the registry does not have.
  oci::Descriptor missing = img.layers[0];
  missing.digest = oci::digest_of("not there");
  auto nf = c.pull_blob(*ref, missing, dst.sink());
  ASSERT_FALSE(nf.ok());
  EXPECT_EQ(nf.error().code(), Errc::kNotFound) << nf.error().str();
  EXPECT_EQ(dst.count("tmp"), 0u);
}

TEST(FakeRegistryTest, BearerTokenFlowAndCache) {
  auto dir = temp_dir();
  DirStore src(fs::join(dir.path(), "src"));
  TestImage img = make_image(src, 2);
  FakeRegistry fake(src, img);
  fake.bearer_token_ = "tok123";
  fake.drop_next_big_ = false;
  TestServer server([&](const TestRequest& r) { return fake.handle(r); });
  fake.self_ = server.host();
  Options o;
  o.insecure_hosts = {server.host()};
  o.auth_file = fs::join(dir.path(), "none.json");
  Client c(o);
  auto ref = Reference::parse(server.host() + "/x/y:v1");
  ASSERT_TRUE(ref.ok());
  auto d1 = c.resolve(*ref);
  ASSERT_TRUE(d1.ok()) << d1.error().str();
  EXPECT_EQ(*d1, oci::digest_of(img.manifest));
  DirStore dst(fs::join(dir.path(), "dst"));
  auto p = c.pull(*ref, amd64(), dst.sink());
  ASSERT_TRUE(p.ok()) << p.error().str();
  EXPECT_EQ(fake.token_requests_, 1) << "the token is cached per scope";
  EXPECT_NE(fake.last_token_query_.find("service=fake"), std::string::npos);
  EXPECT_NE(fake.last_token_query_.find("scope=repository%3Ax%2Fy%3Apull"), std::string::npos);
}

TEST(FakeRegistryTest, PlainHttpNeedsInsecureEvenOnLoopback) {
  TestServer server([](const TestRequest&) { return TestResponse{200, {}, "{}", -1}; });
  Client c(Options{});
  auto ref = Reference::parse(server.host() + "/x/y:v1");
  ASSERT_TRUE(ref.ok());
  auto r = c.resolve(*ref);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().str().find(server.host()), std::string::npos) << r.error().str();
  EXPECT_NE(r.error().str().find("insecure"), std::string::npos) << r.error().str();
}

// ---- hostile or failing registries ----------------------------------------------------------

Options fast_options(const TestServer& server) {
  Options o;
  o.insecure_hosts = {server.host()};
  o.backoff_ms = 10;
  return o;
}

// 5xx answers to a manifest GET are retried as blob downloads are: two 500s do not fail a pull.
TEST(HostileRegistryTest, Manifest5xxIsRetried) {
  auto dir = temp_dir();
  DirStore src(fs::join(dir.path(), "src"));
  TestImage img = make_image(src, 3);
  FakeRegistry fake(src, img);
  fake.drop_next_big_ = false;
  int failures_left = 2;
  TestServer server([&](const TestRequest& r) {
    if (r.target == "/v2/x/y/manifests/v1" && failures_left > 0) {
      failures_left--;
      return TestResponse{500, {}, R"({"errors":[{"code":"UNKNOWN","message":"try later"}]})", -1};
    }
    return fake.handle(r);
  });
  Client c(fast_options(server));
  DirStore dst(fs::join(dir.path(), "dst"));
  auto ref = Reference::parse(server.host() + "/x/y:v1");
  ASSERT_TRUE(ref.ok());
  auto p = c.pull(*ref, amd64(), dst.sink());
  ASSERT_TRUE(p.ok()) << p.error().str();
  EXPECT_EQ(failures_left, 0);
  // resolve (HEAD) too.
  failures_left = 2;
  auto d = c.resolve(*ref);
  ASSERT_TRUE(d.ok()) << d.error().str();
  EXPECT_EQ(*d, oci::digest_of(img.manifest));
  // A registry that keeps failing still fails, with its status, after max_attempts tries.
  failures_left = 100;
  auto bad = c.pull(*ref, amd64(), dst.sink());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().str().find("HTTP 500"), std::string::npos) << bad.error().str();
  EXPECT_EQ(failures_left, 100 - Options{}.max_attempts);
}

// A push whose upload start (POST /blobs/uploads/) and manifest PUT are answered 500 once.
TEST(HostileRegistryTest, UploadStart5xxIsRetried) {
  auto dir = temp_dir();
  DirStore src(fs::join(dir.path(), "src"));
  TestImage img = make_image(src, 4);
  std::mutex mu;
  std::map<std::string, int> fail_once = {{"POST", 1}, {"PUT /v2/x/y/manifests/v1", 1}};
  std::set<std::string> have;
  int starts = 0;
  TestServer server([&](const TestRequest& r) {
    std::lock_guard<std::mutex> lk(mu);
    const std::string key = r.method == "POST" ? "POST" : r.method + " " + r.target;
    if (auto f = fail_once.find(key); f != fail_once.end() && f->second > 0) {
      f->second--;
      return TestResponse{500, {}, "{}", -1};
    }
    const std::string blobs = "/v2/x/y/blobs/";
    if (r.method == "HEAD" && r.target.rfind(blobs, 0) == 0) {
      return TestResponse{have.count(r.target.substr(blobs.size())) ? 200 : 404, {}, "", -1};
    }
    if (r.method == "POST" && r.target == "/v2/x/y/blobs/uploads/") {
      starts++;
      return TestResponse{202, {{"Location", "/v2/x/y/blobs/uploads/u" + std::to_string(starts)}},
                          "", -1};
    }
    if (r.method == "PUT" && r.target.rfind("/v2/x/y/blobs/uploads/", 0) == 0) {
      auto q = r.target.find("digest=");
      std::string digest = r.target.substr(q + 7);
      if (auto pct = digest.find("%3A"); pct != std::string::npos) digest.replace(pct, 3, ":");
      if (oci::digest_of(r.body) != digest) return TestResponse{400, {}, "{}", -1};
      have.insert(digest);
      return TestResponse{201, {}, "", -1};
    }
    if (r.method == "PUT" && r.target == "/v2/x/y/manifests/v1") {
      return TestResponse{201, {{"Docker-Content-Digest", oci::digest_of(r.body)}}, "", -1};
    }
    return TestResponse{404, {}, "{}", -1};
  });
  Client c(fast_options(server));
  auto ref = Reference::parse(server.host() + "/x/y:v1");
  ASSERT_TRUE(ref.ok());
  auto pushed = c.push(*ref, img.manifest, oci::kMediaTypeManifest, img.blobs(),
                       [&](const std::string& d) { return src.path(d); });
  ASSERT_TRUE(pushed.ok()) << pushed.error().str();
  EXPECT_EQ(*pushed, oci::digest_of(img.manifest));
  EXPECT_EQ(fail_once["POST"], 0);
  EXPECT_EQ(fail_once["PUT /v2/x/y/manifests/v1"], 0);
  EXPECT_EQ(c.stats().uploaded, 3);
}

// A descriptor of size 0 (or any size) bounds its download: the transfer stops once more bytes
// than the descriptor says have arrived, not after the registry's 16 MiB.
TEST(HostileRegistryTest, BlobDownloadIsBoundedByTheDescriptorSize) {
  const std::string flood(16 << 20, 'x');
  TestServer server([&](const TestRequest&) { return TestResponse{200, {}, flood, -1}; });
  Options o = fast_options(server);
  std::atomic<uint64_t> most{0};
  o.progress = [&](const std::string&, uint64_t cur, uint64_t) {
    if (cur > most) most = cur;
  };
  Client c(o);
  auto dir = temp_dir();
  DirStore dst(fs::join(dir.path(), "dst"));
  auto ref = Reference::parse(server.host() + "/x/y:v1");
  ASSERT_TRUE(ref.ok());
  for (int64_t size : {int64_t{0}, int64_t{1000}}) {
    most = 0;
    oci::Descriptor d{oci::kMediaTypeLayerGzip, oci::digest_of(std::string(size, 'x')), size, {}, {}};
    auto st = c.pull_blob(*ref, d, dst.sink());
    ASSERT_FALSE(st.ok()) << "size " << size;
    EXPECT_EQ(st.error().code(), Errc::kCorrupt) << st.error().str();
    EXPECT_NE(st.error().str().find("more data than the descriptor's size " + std::to_string(size)),
              std::string::npos)
        << st.error().str();
    EXPECT_LE(most.load(), static_cast<uint64_t>(size) + (1 << 20)) << "size " << size;
  }
  EXPECT_EQ(dst.count("tmp"), 0u);
  EXPECT_EQ(dst.count("blobs"), 0u);
}

// A 100 MB manifest is refused by its Content-Length with an error naming the manifest limit,
// and a config descriptor over the config limit is refused before it is downloaded.
TEST(HostileRegistryTest, ManifestAndConfigSizeLimits) {
  const std::string huge(100 << 20, ' ');
  std::string cfg_digest = oci::digest_of("{}");
  std::string manifest = R"({"schemaVersion":2,"mediaType":")" + std::string(oci::kMediaTypeManifest) +
                         R"(","config":{"mediaType":")" + oci::kMediaTypeConfig + R"(","digest":")" +
                         cfg_digest + R"(","size":1073741824},"layers":[]})";
  std::atomic<int> blob_requests{0};
  TestServer server([&](const TestRequest& r) {
    if (r.target == "/v2/x/y/manifests/huge") {
      return TestResponse{200, {{"Content-Type", oci::kMediaTypeManifest}}, huge, -1};
    }
    if (r.target == "/v2/x/y/manifests/bigconfig") {
      return TestResponse{200, {{"Content-Type", oci::kMediaTypeManifest}}, manifest, -1};
    }
    blob_requests++;
    return TestResponse{404, {}, "{}", -1};
  });
  Client c(fast_options(server));
  auto dir = temp_dir();
  DirStore dst(fs::join(dir.path(), "dst"));
  auto huge_ref = Reference::parse(server.host() + "/x/y:huge");
  ASSERT_TRUE(huge_ref.ok());
  auto start = std::chrono::steady_clock::now();
  auto p = c.pull(*huge_ref, amd64(), dst.sink());
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().str().find("4 MiB limit for manifests"), std::string::npos) << p.error().str();
  EXPECT_EQ(p.error().str().find("transfer aborted"), std::string::npos) << p.error().str();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  auto cfg_ref = Reference::parse(server.host() + "/x/y:bigconfig");
  ASSERT_TRUE(cfg_ref.ok());
  auto q = c.pull_manifest(*cfg_ref, amd64(), dst.sink());
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.error().str().find("MiB limit for image configs"), std::string::npos)
      << q.error().str();
  EXPECT_EQ(blob_requests, 0);
}

// A server trickling 2 bytes/s fails the fetch under the low-speed limit (here 100 B/s over
// 1 s, the time set through OCIB_LOW_SPEED_TIME), naming the URL and the limit.
TEST(HostileRegistryTest, TricklingServerHitsTheLowSpeedLimit) {
  TestServer server([&](const TestRequest&) {
    TestResponse r{200, {{"Content-Type", oci::kMediaTypeManifest}}, std::string(4000, ' '), -1};
    r.trickle_bytes_per_sec = 2;
    return r;
  });
  Options o = fast_options(server);
  o.low_speed_limit = 100;
  o.max_attempts = 2;
  ::setenv("OCIB_LOW_SPEED_TIME", "1", 1);
  Client c(o);
  ::unsetenv("OCIB_LOW_SPEED_TIME");
  auto ref = Reference::parse(server.host() + "/x/y:slow");
  ASSERT_TRUE(ref.ok());
  auto start = std::chrono::steady_clock::now();
  auto r = c.resolve_verified(*ref);
  ASSERT_FALSE(r.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(15));
  const std::string msg = r.error().str();
  EXPECT_NE(msg.find("http://" + server.host() + "/v2/x/y/manifests/slow"), std::string::npos) << msg;
  EXPECT_NE(msg.find("under 100 bytes/s for 1 s"), std::string::npos) << msg;
  EXPECT_NE(msg.find("gave up after 2 attempts"), std::string::npos) << msg;
}

// ---- the real registry (CNCF distribution) on loopback ------------------------------------

const char* kRegistryBin = "/usr/bin/docker-registry";

bool run(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }

class RealRegistry {
 public:
  // tls: serve HTTPS with a cert from a fresh CA (dir/ca.crt); user: htpasswd auth.
  RealRegistry(const std::string& dir, bool tls, const std::string& user = "",
               const std::string& password = "")
      : dir_(dir), port_(testing::free_port()) {
    std::string cfg =
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
        "storage:\n  filesystem:\n    rootdirectory: " +
        dir +
        "/data\n"
        "http:\n  addr: 127.0.0.1:" +
        std::to_string(port_) + "\n";
    if (tls) {
      std::string d = dir;
      ok_ = run("cd " + d +
                " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
                "-nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=ocib-test-ca") &&
            run("cd " + d +
                " && openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
                "-nodes -keyout srv.key -out srv.csr -subj /CN=127.0.0.1") &&
            run("cd " + d +
                " && printf 'subjectAltName=IP:127.0.0.1\\n' > ext.cnf && "
                "openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
                "-out srv.crt -days 2 -extfile ext.cnf");
      cfg += "  tls:\n    certificate: " + d + "/srv.crt\n    key: " + d + "/srv.key\n";
    }
    if (!user.empty()) {
      crypt_data cd{};
      const char* salt = crypt_gensalt_rn("$2b$", 5, nullptr, 0, cd.setting, sizeof cd.setting);
      const char* hash = salt ? crypt_rn(password.c_str(), salt, &cd, sizeof cd) : nullptr;
      if (!hash || hash[0] == '*') {
        ok_ = false;
        why_ = "no bcrypt in libcrypt";
        return;
      }
      (void)fs::write_file_atomic(dir + "/htpasswd", user + ":" + hash + "\n");
      cfg += "auth:\n  htpasswd:\n    realm: ocib-test\n    path: " + dir + "/htpasswd\n";
    }
    (void)fs::write_file_atomic(dir + "/config.yml", cfg);
    if (!ok_) {
      why_ = "openssl failed";
      return;
    }
    std::string log = dir + "/registry.log";
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    std::string conf = dir + "/config.yml";
    char* argv[] = {const_cast<char*>(kRegistryBin), const_cast<char*>("serve"),
                    const_cast<char*>(conf.c_str()), nullptr};
    if (::posix_spawn(&pid_, kRegistryBin, &fa, nullptr, argv, environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    ok_ = pid_ > 0 && wait_listening();
    if (!ok_) why_ = "docker-registry did not start: " + fs::read_file(log).value();
  }
  ~RealRegistry() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int st;
      ::waitpid(pid_, &st, 0);
    }
  }
  bool ok() const { return ok_; }
  const std::string& why() const { return why_; }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  bool wait_listening() {
    for (int i = 0; i < 200; ++i) {
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(port_));
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      ::close(fd);
      if (up) return true;
      int st;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  std::string dir_;
  int port_;
  pid_t pid_ = -1;
  bool ok_ = true;
  std::string why_;
};

class RealRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(kRegistryBin, X_OK) != 0) GTEST_SKIP() << kRegistryBin << " not installed";
    dir_ = temp_dir();
    store_ = std::make_unique<DirStore>(fs::join(dir_.path(), "store"));
  }
  std::function<std::string(const std::string&)> locate() {
    return [this](const std::string& d) { return store_->path(d); };
  }
  fs::TempDir dir_;
  std::unique_ptr<DirStore> store_;
};

TEST_F(RealRegistryTest, PlainHttpPushPullMountIndex) {
  std::string rdir = fs::join(dir_.path(), "reg");
  ASSERT_TRUE(fs::mkdirs(rdir).ok());
  RealRegistry reg(rdir, /*tls=*/false);
  ASSERT_TRUE(reg.ok()) << reg.why();
  Options o;
  o.insecure_hosts = {reg.host()};
  o.chunk_size = 64 * 1024;  // the 200 kB layer goes up in PATCH chunks
  o.auth_file = fs::join(dir_.path(), "none.json");
  TestImage img = make_image(*store_, 7);

  auto ref = Reference::parse(reg.host() + "/test/a:v1");
  ASSERT_TRUE(ref.ok());
  {
    Client c(o);
    auto d = c.push(*ref, img.manifest, oci::kMediaTypeManifest, img.blobs(), locate());
    ASSERT_TRUE(d.ok()) << d.error().str();
    EXPECT_EQ(*d, oci::digest_of(img.manifest));
    EXPECT_EQ(c.stats().uploaded, 3);
    EXPECT_EQ(c.stats().skipped, 0);
    auto r = c.resolve(*ref);
    ASSERT_TRUE(r.ok()) << r.error().str();
    EXPECT_EQ(*r, *d);
  }
  {  // Second push: the registry has everything.
    Client c(o);
    auto d = c.push(*ref, img.manifest, oci::kMediaTypeManifest, img.blobs(), locate());
    ASSERT_TRUE(d.ok()) << d.error().str();
    EXPECT_EQ(c.stats().uploaded, 0);
    EXPECT_EQ(c.stats().skipped, 3);
  }
  {  // Another repository on the same registry: mounted, not uploaded.
    Client c(o);
    auto ref_b = Reference::parse(reg.host() + "/test/b:v1");
    auto d =
        c.push(*ref_b, img.manifest, oci::kMediaTypeManifest, img.blobs(), locate(), {"test/a"});
    ASSERT_TRUE(d.ok()) << d.error().str();
    EXPECT_EQ(c.stats().uploaded, 0);
    EXPECT_EQ(c.stats().mounted, 3);
  }
  {  // Pull round trip, by tag then by digest (nothing fetched twice).
    Client c(o);
    DirStore dst(fs::join(dir_.path(), "dst"));
    auto p = c.pull(*ref, amd64(), dst.sink());
    ASSERT_TRUE(p.ok()) << p.error().str();
    EXPECT_EQ(p->manifest_bytes, img.manifest);
    EXPECT_EQ(p->config_digest, img.config.digest);
    EXPECT_EQ(p->config_bytes, *fs::read_file(store_->path(img.config.digest)));
    ASSERT_EQ(p->layers.size(), 2u);
    for (const auto& l : img.layers) {
      EXPECT_EQ(*fs::read_file(dst.path(l.digest)), *fs::read_file(store_->path(l.digest)));
    }
    EXPECT_EQ(c.stats().downloaded, 3);
    auto by_digest = Reference::parse(reg.host() + "/test/b@" + p->manifest_digest);
    auto p2 = c.pull(*by_digest, amd64(), dst.sink());
    ASSERT_TRUE(p2.ok()) << p2.error().str();
    EXPECT_EQ(c.stats().downloaded, 4) << "only the config is fetched again";
    EXPECT_EQ(dst.count("tmp"), 0u);
  }
  {  // An index: the platform's manifest is chosen.
    Client c(o);
    TestImage arm = make_image(*store_, 8, "arm64");
    auto arm_ref = Reference::parse(reg.host() + "/test/multi@" + oci::digest_of(arm.manifest));
    auto amd_ref = Reference::parse(reg.host() + "/test/multi@" + oci::digest_of(img.manifest));
    ASSERT_TRUE(
        c.push(*arm_ref, arm.manifest, oci::kMediaTypeManifest, arm.blobs(), locate()).ok());
    ASSERT_TRUE(
        c.push(*amd_ref, img.manifest, oci::kMediaTypeManifest, img.blobs(), locate()).ok());
    nlohmann::json idx = {{"schemaVersion", 2}, {"mediaType", oci::kMediaTypeIndex}};
    idx["manifests"] = nlohmann::json::array();
    for (auto [m, arch] : {std::pair{&img, "amd64"}, std::pair{&arm, "arm64"}}) {
      oci::Descriptor d{oci::kMediaTypeManifest,
                        oci::digest_of(m->manifest),
                        static_cast<int64_t>(m->manifest.size()),
                        {},
                        oci::Platform{"linux", arch, ""}};
      idx["manifests"].push_back(oci::descriptor_json(d));
    }
    std::string idx_bytes = oci::canonical(idx);
    auto multi = Reference::parse(reg.host() + "/test/multi:latest");
    auto d = c.push(*multi, idx_bytes, oci::kMediaTypeIndex, {}, locate());
    ASSERT_TRUE(d.ok()) << d.error().str();
    DirStore dst(fs::join(dir_.path(), "dst2"));
    auto p = c.pull(*multi, oci::Platform{"linux", "arm64", "v8"}, dst.sink());
    ASSERT_TRUE(p.ok()) << p.error().str();
    EXPECT_EQ(p->manifest_digest, oci::digest_of(arm.manifest));
    EXPECT_EQ(p->config_digest, arm.config.digest);
    auto none = c.pull(*multi, oci::Platform{"linux", "s390x", ""}, dst.sink());
    ASSERT_FALSE(none.ok());
    EXPECT_EQ(none.error().code(), Errc::kNotFound);
  }
}

TEST_F(RealRegistryTest, TlsBasicAuth) {
  std::string rdir = fs::join(dir_.path(), "reg");
  ASSERT_TRUE(fs::mkdirs(rdir).ok());
  const std::string password = "s3cret-Pa55";
  RealRegistry reg(rdir, /*tls=*/true, "alice", password);
  ASSERT_TRUE(reg.ok()) << reg.why();
  std::string certs = fs::join(dir_.path(), "certs.d");
  ASSERT_TRUE(fs::mkdirs(fs::join(certs, reg.host())).ok());
  ASSERT_TRUE(fs::write_file_atomic(fs::join(certs, reg.host() + "/ca.crt"),
                                    *fs::read_file(rdir + "/ca.crt"))
                  .ok());
  auto auth_file = [&](const std::string& pw) {
    std::string f = fs::join(dir_.path(), "auth-" + pw + ".json");
    EXPECT_TRUE(fs::write_file_atomic(f, R"({"auths":{")" + reg.host() + R"(":{"auth":")" +
                                             base64_encode("alice:" + pw) + R"("}}})")
                    .ok());
    return f;
  };
  TestImage img = make_image(*store_, 9);
  auto ref = Reference::parse(reg.host() + "/secure/app:v1");
  ASSERT_TRUE(ref.ok());

  Options good;
  good.certs_dirs = {certs};
  good.auth_file = auth_file(password);
  {
    Client c(good);
    auto d = c.push(*ref, img.manifest, oci::kMediaTypeManifest, img.blobs(), locate());
    ASSERT_TRUE(d.ok()) << d.error().str();
    EXPECT_EQ(c.stats().uploaded, 3);
    DirStore dst(fs::join(dir_.path(), "dst"));
    auto p = c.pull(*ref, amd64(), dst.sink());
    ASSERT_TRUE(p.ok()) << p.error().str();
    EXPECT_EQ(p->manifest_digest, *d);
  }
  {  // Wrong password: a clear auth error without the secret.
    Options bad = good;
    bad.auth_file = auth_file("wrong-pw");
    Client c(bad);
    auto r = c.resolve(*ref);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), Errc::kSecurity);
    EXPECT_NE(r.error().str().find("authentication failed"), std::string::npos) << r.error().str();
    EXPECT_NE(r.error().str().find("alice"), std::string::npos);
    EXPECT_EQ(r.error().str().find("wrong-pw"), std::string::npos);
  }
  {  // No credentials at all.
    Options anon = good;
    anon.auth_file = fs::join(dir_.path(), "none.json");
    Client c(anon);
    auto r = c.resolve(*ref);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), Errc::kSecurity);
  }
  {  // Unknown CA: a TLS error naming the host and where to put its CA.
    Options untrusted = good;
    untrusted.certs_dirs = {fs::join(dir_.path(), "empty-certs.d")};
    Client c(untrusted);
    auto r = c.resolve(*ref);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), Errc::kSecurity);
    std::string msg = r.error().str();
    EXPECT_NE(msg.find("TLS"), std::string::npos) << msg;
    EXPECT_NE(msg.find(reg.host()), std::string::npos) << msg;
    EXPECT_NE(msg.find("empty-certs.d/" + reg.host() + "/ca.crt"), std::string::npos) << msg;
    EXPECT_EQ(msg.find(password), std::string::npos);
  }
  {  // Insecure: unverified TLS allowed for that host only.
    Options insecure = good;
    insecure.certs_dirs = {fs::join(dir_.path(), "empty-certs.d")};
    insecure.insecure_hosts = {reg.host()};
    Client c(insecure);
    auto r = c.resolve(*ref);
    ASSERT_TRUE(r.ok()) << r.error().str();
  }
}

// A loopback proxy in front of the registry that flips a byte in every blob it relays.
TEST_F(RealRegistryTest, CorruptingProxyFailsPullAndKeepsNothing) {
  std::string rdir = fs::join(dir_.path(), "reg");
  ASSERT_TRUE(fs::mkdirs(rdir).ok());
  RealRegistry reg(rdir, /*tls=*/false);
  ASSERT_TRUE(reg.ok()) << reg.why();
  Options o;
  o.insecure_hosts = {reg.host()};
  o.auth_file = fs::join(dir_.path(), "none.json");
  TestImage img = make_image(*store_, 11);
  auto ref = Reference::parse(reg.host() + "/test/c:v1");
  {
    Client c(o);
    ASSERT_TRUE(c.push(*ref, img.manifest, oci::kMediaTypeManifest, img.blobs(), locate()).ok());
  }
  Http upstream("ocib-test-proxy");
  TestServer proxy([&](const TestRequest& r) {
    HttpRequest fwd;
    fwd.method = r.method;
    fwd.url = "http://" + reg.host() + r.target;
    fwd.follow_redirects = true;
    if (auto a = r.headers.find("accept"); a != r.headers.end()) {
      fwd.headers.push_back("Accept: " + a->second);
    }
    HttpResponse up = upstream.perform(fwd, TlsConfig{});
    TestResponse out{static_cast<int>(up.status), {}, up.body, -1};
    for (const char* h : {"content-type", "docker-content-digest"}) {
      if (!up.header(h).empty()) out.headers.emplace_back(h, up.header(h));
    }
    if (r.target.find("/blobs/") != std::string::npos && !out.body.empty()) {
      out.body[out.body.size() / 2] ^= 0x5a;
    }
    return out;
  });
  Options via = o;
  via.insecure_hosts.push_back(proxy.host());
  via.mirrors[reg.host()] = {proxy.host()};
  Client c(via);
  DirStore dst(fs::join(dir_.path(), "dst"));
  auto p = c.pull(*ref, amd64(), dst.sink());
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code(), Errc::kCorrupt);
  EXPECT_NE(p.error().str().find("digest mismatch"), std::string::npos) << p.error().str();
  EXPECT_EQ(dst.count("blobs"), 0u);
  EXPECT_EQ(dst.count("tmp"), 0u);
}

}  // namespace
}  // namespace ocib::registry
