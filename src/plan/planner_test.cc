#include "plan/planner.h"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <map>
#include <string>
#include <vector>

#include "base/fs.h"
#include "dockerfile/dockerfile.h"

namespace ocib::plan {
namespace {

// The world as a test wants it: images, context digests and URLs from maps; every call logged.
class FakeSources : public Sources {
 public:
  std::map<std::string, SourceImage> images;
  std::map<std::string, std::string> digests;  // first pattern -> digest
  std::map<std::string, Download> urls;
  std::vector<std::string> notes, asked;

  Result<SourceImage> image(const std::string& ref, const oci::Platform&) override {
    asked.push_back("image " + ref);
    auto it = images.find(ref);
    if (it == images.end()) return Error(Errc::kNotFound, "no such image");
    return it->second;
  }
  Result<std::string> hash(int, const std::vector<std::string>& patterns, const copy::SourceFilter&,
                           copy::SourceManifest* manifest) override {
    asked.push_back("hash " + patterns.front());
    if (manifest) manifest->entries[patterns.front()] = "seen";
    auto it = digests.find(patterns.front());
    if (it == digests.end()) return Error(Errc::kNotFound, "\"" + patterns.front() + "\": not found");
    return it->second;
  }
  Result<Download> fetch(const std::string& url) override {
    asked.push_back("fetch " + url);
    auto it = urls.find(url);
    if (it == urls.end()) return Error(Errc::kIo, "Couldn't connect to server");
    return it->second;
  }
  void note(const std::string& m) override { notes.push_back(m); }
};

Request request() {
  Request r;
  r.platform = oci::Platform::host();
  r.network = Network::kDefault;
  return r;
}

Result<Plan> plan_text(const std::string& text, FakeSources& src, const Request& req = request()) {
  auto df = dockerfile::parse(text);
  if (!df.ok()) return std::move(df).error();
  return make_plan(*df, req, src);
}

const Step* find(const Plan& p, Step::Kind kind, const std::string& name_part) {
  for (const auto& s : p.steps)
    if (s.kind == kind && s.name.find(name_part) != std::string::npos) return &s;
  return nullptr;
}

TEST(Planner, IdenticalStepsAreOneVertex) {
  FakeSources src;
  auto p = plan_text("FROM scratch AS a\nRUN make\nFROM scratch AS b\nRUN make\n"
                     "FROM scratch\nCOPY --from=a /x /a\nCOPY --from=b /x /b\n",
                     src);
  ASSERT_TRUE(p.ok()) << p.error().str();
  size_t runs = std::count_if(p->steps.begin(), p->steps.end(), [](const Step& s) { return s.kind == Step::Kind::kRun; });
  EXPECT_EQ(runs, 1u);  // same command on the same (empty) parent: the same key
  const Step* cb = find(*p, Step::Kind::kCopy, "/b");
  ASSERT_NE(cb, nullptr);
  ASSERT_NE(cb->from_top, nullptr);
  EXPECT_EQ(cb->from_top->kind, Step::Kind::kRun);
  EXPECT_NE(std::find(cb->deps.begin(), cb->deps.end(), cb->from_top), cb->deps.end());
}

TEST(Planner, BaseImageLayersComeFromTheSources) {
  FakeSources src;
  SourceImage img;
  img.manifest_digest = "sha256:m";
  img.config.config.env = {"HOME=/root"};
  img.config.diff_ids = {"sha256:d1", "sha256:d2"};
  img.layers = {{"application/vnd.oci.image.layer.v1.tar+gzip", "sha256:b1", 10, {}, {}},
                {"application/vnd.oci.image.layer.v1.tar+gzip", "sha256:b2", 20, {}, {}}};
  src.images["busybox"] = img;
  auto p = plan_text("FROM busybox\nRUN true\n", src);
  ASSERT_TRUE(p.ok()) << p.error().str();
  ASSERT_EQ(p->steps.size(), 3u);
  EXPECT_EQ(p->steps[0].kind, Step::Kind::kBase);
  EXPECT_EQ(p->steps[1].result.digest, "sha256:b2");
  EXPECT_EQ(p->steps[1].result.diff_id, "sha256:d2");
  EXPECT_EQ(p->steps[1].parent, &p->steps[0]);
  const Step& run = p->steps[2];
  EXPECT_EQ(run.parent, &p->steps[1]);
  // The image's environment, with the default PATH added as BuildKit does.
  EXPECT_NE(std::find(run.env.begin(), run.env.end(), "HOME=/root"), run.env.end());
  EXPECT_TRUE(std::any_of(run.env.begin(), run.env.end(), [](const std::string& e) { return e.rfind("PATH=", 0) == 0; }));

  FakeSources none;
  auto missing = plan_text("FROM scratch\nRUN true\nFROM nothere\n", none);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().str().find("Dockerfile:3"), std::string::npos) << missing.error().str();
  EXPECT_NE(missing.error().str().find("base image \"nothere\": no such image"), std::string::npos);
}

TEST(Planner, CopyKeyFollowsTheContextDigest) {
  FakeSources src;
  src.digests["app"] = "sha256:one";
  Request req = request();
  req.context_fd = 3;
  auto a = plan_text("FROM scratch\nCOPY app /app\n", src, req);
  ASSERT_TRUE(a.ok()) << a.error().str();
  src.digests["app"] = "sha256:two";
  auto b = plan_text("FROM scratch\nCOPY app /app\n", src, req);
  ASSERT_TRUE(b.ok());
  const Step* ca = find(*a, Step::Kind::kCopy, "COPY");
  const Step* cb = find(*b, Step::Kind::kCopy, "COPY");
  ASSERT_TRUE(ca && cb);
  EXPECT_NE(ca->key, cb->key);
  // What the key saw is made when the step runs, for the copy to check against (planning
  // builds no manifest); sources that changed since fail it.
  EXPECT_FALSE(ca->copy.expected);
  ASSERT_TRUE(cb->expected_sources);
  auto seen = cb->expected_sources();
  ASSERT_TRUE(seen.ok()) << seen.error().str();
  EXPECT_EQ((*seen)->entries.count("app"), 1u);
  src.digests["app"] = "sha256:three";
  auto changed = cb->expected_sources();
  ASSERT_FALSE(changed.ok());
  EXPECT_EQ(changed.error().code(), Errc::kCorrupt);
  EXPECT_EQ(ca->copy.dest, "/app");

  auto missing = plan_text("FROM scratch\nWORKDIR /w\nCOPY nope ./\n", src, req);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().str().find("Dockerfile:3: COPY failed"), std::string::npos) << missing.error().str();
}

TEST(Planner, AddUrlIsFetchedAndChecked) {
  FakeSources src;
  src.urls["https://example.com/dl/tool.tar"] = {"bytes", 1700000000};
  auto p = plan_text("FROM scratch\nADD https://example.com/dl/tool.tar /opt/\n", src);
  ASSERT_TRUE(p.ok()) << p.error().str();
  const Step* add = find(*p, Step::Kind::kCopy, "ADD");
  ASSERT_NE(add, nullptr);
  ASSERT_EQ(add->copy.inline_files.size(), 1u);
  EXPECT_EQ(add->copy.inline_files[0].name, "tool.tar");
  EXPECT_EQ(add->copy.inline_files[0].content, "bytes");
  EXPECT_EQ(add->copy.inline_files[0].mode, 0600u);
  EXPECT_EQ(add->copy.inline_files[0].mtime, 1700000000);

  auto bad = plan_text("FROM scratch\nADD --checksum=sha256:" + std::string(64, '0') +
                           " https://example.com/dl/tool.tar /opt/\n",
                       src);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().str().find("digest mismatch"), std::string::npos) << bad.error().str();
  auto down = plan_text("FROM scratch\n\nADD https://example.com/gone /x\n", src);
  ASSERT_FALSE(down.ok());
  EXPECT_NE(down.error().str().find("Dockerfile:3: ADD https://example.com/gone: Couldn't connect"), std::string::npos)
      << down.error().str();
}

TEST(Planner, KeysSeparateWhatChangesTheResult) {
  FakeSources src;
  auto key_of = [&](const std::string& text, const Request& req) {
    auto p = plan_text(text, src, req);
    EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().str());
    return p.ok() && p->top() ? p->top()->key : std::string();
  };
  Request req = request();
  std::string base = key_of("FROM scratch\nRUN x\n", req);
  EXPECT_EQ(base, key_of("FROM scratch\nRUN x\n", req));
  EXPECT_NE(base, key_of("FROM scratch\nRUN --network=none x\n", req));
  EXPECT_NE(base, key_of("FROM scratch\nENV A=1\nRUN x\n", req));
  EXPECT_NE(base, key_of("FROM scratch\nUSER 1000\nRUN x\n", req));
  // A proxy build arg reaches the command but not the key.
  Request proxied = req;
  proxied.build_args["HTTP_PROXY"] = "http://127.0.0.1:3128";
  EXPECT_EQ(base, key_of("FROM scratch\nRUN x\n", proxied));
  Request arg = req;
  arg.build_args["V"] = "2";
  EXPECT_NE(key_of("FROM scratch\nARG V=1\nRUN x\n", req), key_of("FROM scratch\nARG V=1\nRUN x\n", arg));
}

TEST(Planner, EnvPairsExpandWithTheEnvironmentBeforeTheInstruction) {
  FakeSources src;
  auto p = plan_text("FROM scratch\nENV A=1 B=${A:-x}\nENV C=$A\n", src);
  ASSERT_TRUE(p.ok()) << p.error().str();
  const auto& env = p->target_stage().config.env;
  EXPECT_NE(std::find(env.begin(), env.end(), "B=x"), env.end());
  EXPECT_NE(std::find(env.begin(), env.end(), "C=1"), env.end());
}

TEST(Planner, PlansMoveWithoutDanglingSteps) {
  // Steps point at each other; plans kept in a growing vector must stay valid.
  FakeSources src;
  std::vector<Plan> plans;
  for (int i = 0; i < 5; ++i) {
    auto p = plan_text("FROM scratch AS a\nRUN one\nRUN two\nFROM a\nRUN three " + std::to_string(i) + "\n", src);
    ASSERT_TRUE(p.ok());
    plans.push_back(std::move(p).value());
  }
  for (const auto& p : plans) {
    const Step* top = p.top();
    ASSERT_NE(top, nullptr);
    int depth = 0;
    for (const Step* s = top; s; s = s->parent) {
      bool inside = std::any_of(p.steps.begin(), p.steps.end(), [s](const Step& x) { return &x == s; });
      EXPECT_TRUE(inside);
      ++depth;
    }
    EXPECT_EQ(depth, 3);
  }
}

TEST(Planner, DescribeListsEveryStepWithItsKey) {
  FakeSources src;
  auto p = plan_text("FROM scratch\nRUN a\nRUN b\n", src);
  ASSERT_TRUE(p.ok());
  std::vector<std::string> out;
  describe(*p, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_NE(out[1].find("\"key\":\"" + p->top()->key + "\""), std::string::npos) << out[1];
  EXPECT_NE(out[1].find("\"target\":true"), std::string::npos);
  EXPECT_NE(out[1].find("\"deps\":[1]"), std::string::npos);
}

TEST(Planner, OutlinePlansEveryStageAsFarAsItGoes) {
  FakeSources src;
  Request req = request();
  req.outline = true;
  req.target = "b";
  auto p = plan_text("FROM scratch AS a\nRUN one\nFROM a AS b\nRUN two\nRUN --security=insecure x\nRUN three\n"
                     "FROM scratch AS unused\nCOPY --from=a /x /x\nRUN --mount=from=b,target=/m four\n"
                     "ADD https://example.com/never /n\n",
                     src, req);
  ASSERT_TRUE(p.ok()) << p.error().str();
  ASSERT_EQ(p->stages.size(), 3u);
  EXPECT_EQ(p->target, 1u);
  EXPECT_TRUE(p->stages[2].planned);  // not needed by the target, planned for the outline
  EXPECT_EQ(p->stages[1].from_stage, std::optional<size_t>(0));
  EXPECT_EQ(p->stages[0].base, "scratch");
  EXPECT_EQ(p->stages[1].own_steps.size(), 2u);  // the refused RUN is skipped, the next one kept
  ASSERT_EQ(p->stages[2].uses.size(), 2u);
  EXPECT_EQ(p->stages[2].uses[0], (std::pair<size_t, int>{0, 8}));
  EXPECT_EQ(p->stages[2].uses[1], (std::pair<size_t, int>{1, 9}));
  EXPECT_EQ(std::count(src.asked.begin(), src.asked.end(), "fetch https://example.com/never"), 0);
  // A build refuses it (no --allow security.insecure).
  Request build = request();
  build.target = "b";
  FakeSources src2;
  EXPECT_FALSE(plan_text("FROM scratch AS a\nRUN one\nFROM a AS b\nRUN --security=insecure x\n", src2, build).ok());
}

// BuildKit: a stage is copied or mounted from only once it is defined (dispatched in order), and
// --from is never expanded.
TEST(Planner, CopyAndMountFromALaterStageAreRefusedAsInBuildKit) {
  FakeSources src;
  Request req = request();
  auto err = [&](const std::string& text, const Request& r) {
    auto p = plan_text(text, src, r);
    return p.ok() ? std::string("planned") : p.error().str();
  };
  req.target = "a";
  EXPECT_EQ(err("FROM scratch AS a\nCOPY --from=Later /x /x\nFROM scratch AS later\nRUN make\n", req),
            "Dockerfile:2: cannot copy from stage \"Later\", it needs to be defined before current stage \"a\"");
  req.target = "";
  EXPECT_EQ(err("FROM scratch\nCOPY --from=1 /x /x\nFROM scratch\nRUN a\nFROM scratch\nCOPY --from=0 /y /y\n", req).substr(0, 62),
            "Dockerfile:2: cannot copy from stage \"1\", it needs to be defin");
  EXPECT_NE(err("FROM scratch\nCOPY --from=1 /x /x\nFROM scratch\nRUN a\nFROM scratch\nCOPY --from=0 /y /y\n", req).find("current stage \"stage-0\""),
            std::string::npos);
  req.target = "a";
  EXPECT_EQ(err("FROM scratch AS a\nRUN --mount=from=later,dst=/m make\nFROM scratch AS later\n", req),
            "Dockerfile:2: cannot mount from stage \"later\" to \"/m\", stage needs to be defined before current command");
  req.target = "";
  Request arg = req;
  arg.build_args["X"] = "a";
  EXPECT_EQ(err("FROM scratch AS a\nFROM scratch\nARG X\nCOPY --from=$X /x /x\n", arg),
            "Dockerfile:4: variable expansion is not supported for --from, define a new stage with FROM using ARG "
            "from global scope as a workaround");
  EXPECT_EQ(err("FROM scratch AS a\nFROM scratch\nARG X\nRUN --mount=from=${X},target=/m make\n", arg),
            "Dockerfile:4: 'from' doesn't support variable expansion, define alias stage instead");
  // A '$' at the very end is no expansion; an earlier stage is fine.
  EXPECT_NE(err("FROM scratch AS a\nFROM scratch\nRUN --mount=from=a$,target=/m make\n", req).find("a$"),
            std::string::npos);
  EXPECT_EQ(err("FROM scratch AS a\nRUN one\nFROM scratch\nCOPY --from=a /x /x\nRUN --mount=from=a,target=/m make\n", req),
            "planned");
}

TEST(Planner, ExposeSplitsExpandedWords) {
  FakeSources src;
  Request req = request();
  req.build_args["PORTS"] = "3000 4000";
  auto p = plan_text("FROM scratch\nARG PORTS\nEXPOSE $PORTS 80/udp\n", src, req);
  ASSERT_TRUE(p.ok()) << p.error().str();
  EXPECT_EQ(p->target_stage().config.exposed_ports, (std::vector<std::string>{"3000/tcp", "4000/tcp", "80/udp"}));
  auto quoted = plan_text("FROM scratch\nARG PORTS\nEXPOSE \"$PORTS\"\n", src, req);
  ASSERT_FALSE(quoted.ok());  // one word "3000 4000": not a port
}

// History texts as BuildKit's dispatcher writes them (dockerfile2llb commitToHistory).
TEST(Planner, HistoryReadsAsBuildKitWritesIt) {
  FakeSources src;
  src.digests["busybox"] = "sha256:1";
  Request req = request();
  req.build_args["A"] = "given";
  auto p = plan_text("FROM scratch AS b\nMAINTAINER me\nARG A=1 B\nARG C=3\nENV E=env\n"
                "RUN echo $A\nRUN [\"/bin/x\", \"y z\"]\n"
                "COPY --chown=1:2 --chmod=0640 --link busybox /d/\nEXPOSE 80 53/udp\n"
                "CMD [\"a b\", \"c\\\"d\"]\nSHELL [\"/bin/sh\", \"-xc\"]\nVOLUME /v /w\nONBUILD RUN x\n",
                src, req);
  ASSERT_TRUE(p.ok()) << p.error().str();
  std::vector<std::string> h;
  for (const auto& e : p->target_stage().history) h.push_back(e.created_by);
  EXPECT_EQ(h, (std::vector<std::string>{
                   "MAINTAINER me",
                   "ARG A=given B",
                   "ARG C=3",
                   "ENV E=env",
                   "RUN |3 A=given B= C=3 /bin/sh -c echo $A # buildkit",
                   "RUN |3 A=given B= C=3 /bin/x y z # buildkit",
                   "COPY --chown=1:2 --chmod=0640 busybox /d/ # buildkit",
                   "EXPOSE [53/udp 80/tcp]",
                   "CMD [\"a b\" \"c\\\"d\"]",
                   "SHELL [/bin/sh -xc]",
                   "VOLUME [/v /w]",
               }));
  EXPECT_EQ(p->target_stage().author, "me");
  EXPECT_EQ(p->target_stage().config.labels.count("maintainer"), 0u);
}

TEST(Planner, TargetStageArgAndProxyArgsAsBuildKit) {
  FakeSources src;
  auto value = [&](const std::string& text, const Request& r, const std::string& var) {
    auto p = plan_text(text, src, r);
    if (!p.ok()) return "error: " + p.error().str();
    const Step* s = p->top();
    for (const auto* list : {&s->env, &s->proxy_env})
      for (const auto& e : *list)
        if (e.rfind(var + "=", 0) == 0) return e.substr(var.size() + 1);
    return std::string("<unset>");
  };
  Request req = request();
  EXPECT_EQ(value("FROM scratch AS one\nFROM scratch AS Two\nARG TARGETSTAGE\nRUN x\n", req, "TARGETSTAGE"), "two");
  EXPECT_EQ(value("FROM scratch\nARG TARGETSTAGE\nRUN x\n", req, "TARGETSTAGE"), "default");
  req.target = "one";
  EXPECT_EQ(value("FROM scratch AS one\nARG TARGETSTAGE\nRUN x\nFROM scratch AS two\n", req, "TARGETSTAGE"), "one");
  req.target.clear();
  EXPECT_EQ(value("FROM scratch\nRUN x\n", req, "TARGETSTAGE"), "<unset>");  // only when declared
  // Proxies: any case, both spellings reach the command, lowercase wins, no key change.
  Request proxied = request();
  proxied.build_args["Http_Proxy"] = "http://a";
  proxied.build_args["HTTPS_PROXY"] = "http://upper";
  proxied.build_args["https_proxy"] = "http://lower";
  EXPECT_EQ(value("FROM scratch\nRUN x\n", proxied, "HTTP_PROXY"), "http://a");
  EXPECT_EQ(value("FROM scratch\nRUN x\n", proxied, "http_proxy"), "http://a");
  EXPECT_EQ(value("FROM scratch\nRUN x\n", proxied, "HTTPS_PROXY"), "http://lower");
  EXPECT_EQ(value("FROM scratch\nRUN x\n", proxied, "https_proxy"), "http://lower");
  auto p = plan_text("FROM scratch\nRUN x\n", src, proxied);
  auto plain = plan_text("FROM scratch\nRUN x\n", src, request());
  ASSERT_TRUE(p.ok() && plain.ok());
  EXPECT_EQ(p->top()->key, plain->top()->key);
  for (const auto& e : p->target_stage().history) EXPECT_EQ(e.created_by.find("proxy"), std::string::npos);
  EXPECT_TRUE(std::none_of(src.notes.begin(), src.notes.end(), [](const std::string& n) { return n.find("Http_Proxy") != std::string::npos; }));
}

TEST(Planner, AddUrlNamesAsBuildKit) {
  FakeSources src;
  src.urls["http://h/"] = Download{"root", 0};
  src.urls["http://h/dir/?q=1"] = Download{"dir", 0};
  src.urls["http://h/a/file.txt#x"] = Download{"file", 0};
  auto p = plan_text("FROM scratch\nADD http://h/ http://h/dir/?q=1 http://h/a/file.txt#x /d/\n", src);
  ASSERT_TRUE(p.ok()) << p.error().str();
  std::vector<std::string> names;
  for (const auto& f : p->top()->copy.inline_files) names.push_back(f.name);
  EXPECT_EQ(names, (std::vector<std::string>{"__unnamed__", "dir", "file.txt"}));
}

TEST(Planner, OnbuildOfAStageFiresInAStageFromIt) {
  FakeSources src;
  auto p = plan_text("FROM scratch AS base\nONBUILD RUN echo fired\nRUN own\nFROM base AS mid\nRUN mid\nFROM mid\n", src);
  ASSERT_TRUE(p.ok()) << p.error().str();
  std::vector<std::string> runs;
  for (const Step* s = p->top(); s; s = s->parent) runs.insert(runs.begin(), s->argv.back());
  EXPECT_EQ(runs, (std::vector<std::string>{"own", "echo fired", "mid"}));  // once, in mid only
  EXPECT_TRUE(p->target_stage().config.onbuild.empty());
  EXPECT_EQ(p->stages[0].config.onbuild, (std::vector<std::string>{"RUN echo fired"}));
}

// Every Dockerfile of the parser corpus plans with fake Sources (no store, namespaces or
// network): either a plan whose steps point only into it and whose keys are the same when
// planned again, or an error that names its line.
class CorpusSources : public FakeSources {
 public:
  Result<SourceImage> image(const std::string& ref, const oci::Platform& p) override {
    SourceImage img;
    img.manifest_digest = "sha256:" + std::string(64, 'a');
    img.config.platform = p;
    img.config.config.env = {"PATH=/bin"};
    img.config.diff_ids = {"sha256:" + std::string(64, 'b')};
    img.layers = {{"application/vnd.oci.image.layer.v1.tar+gzip", "sha256:" + std::string(64, 'c'), 1, {}, {}}};
    img.config.history = {{"", "ADD rootfs " + ref, "", false}};
    return img;
  }
  Result<std::string> hash(int, const std::vector<std::string>& patterns, const copy::SourceFilter&,
                           copy::SourceManifest*) override {
    std::string all;
    for (const auto& p : patterns) all += p + "\n";
    return "sha256:" + std::to_string(std::hash<std::string>()(all));
  }
  Result<Download> fetch(const std::string& url) override { return Download{"content of " + url, 0}; }
};

TEST(Planner, PlansTheWholeDockerfileCorpus) {
  namespace sfs = std::filesystem;
  std::vector<sfs::path> files;
  for (const auto& e : sfs::directory_iterator(OCIB_DOCKERFILE_CORPUS))
    if (e.path().extension() == ".Dockerfile") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  ASSERT_GT(files.size(), 50u);
  int planned = 0, refused = 0;
  for (const auto& f : files) {
    SCOPED_TRACE(f.filename().string());
    auto text = fs::read_file(f.string());
    ASSERT_TRUE(text.ok());
    auto df = dockerfile::parse(*text);
    if (!df.ok()) continue;  // the parser's own corpus test checks these errors
    auto keys = [&]() -> Result<std::vector<std::string>> {
      CorpusSources src;
      Request req = request();
      req.context_fd = 3;
      OCIB_ASSIGN_OR_RETURN(Plan p, make_plan(*df, req, src));
      std::vector<std::string> out;
      std::set<const Step*> mine;
      for (const auto& s : p.steps) mine.insert(&s);
      for (const auto& s : p.steps) {
        out.push_back(s.key);
        EXPECT_EQ(s.key.size(), 64u) << s.name;
        for (const Step* d : s.deps) EXPECT_TRUE(mine.count(d)) << s.name;
        if (s.parent) {
          EXPECT_TRUE(mine.count(s.parent)) << s.name;
        }
      }
      return out;
    };
    auto first = keys();
    if (!first.ok()) {
      ++refused;
      // Errors are about the Dockerfile: they name its line, except a missing stage/target.
      EXPECT_TRUE(first.error().loc().has_value() || first.error().message().find("stage") != std::string::npos)
          << first.error().str();
      continue;
    }
    ++planned;
    auto second = keys();
    ASSERT_TRUE(second.ok());
    EXPECT_EQ(*first, *second);
  }
  EXPECT_GT(planned, 40);
  EXPECT_GT(refused, 0);
}

}  // namespace
}  // namespace ocib::plan
