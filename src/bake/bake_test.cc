#include <gtest/gtest.h>

#include <map>

#include "bake/definition.h"
#include "bake/files.h"

namespace ocib::bake {
namespace {

using nlohmann::json;

Env env_of(std::map<std::string, std::string> m) {
  return [m](const std::string& k) -> std::optional<std::string> {
    auto it = m.find(k);
    if (it == m.end()) return std::nullopt;
    return it->second;
  };
}

Result<Config> hcl(const std::string& text, const Env& env = env_of({})) {
  OCIB_ASSIGN_OR_RETURN(Document d, parse_hcl(text, "docker-bake.hcl"));
  OCIB_ASSIGN_OR_RETURN(std::vector<Config> c, evaluate({d}, env));
  return c.at(0);
}

Result<Config> json_file(const std::string& text, const Env& env = env_of({})) {
  OCIB_ASSIGN_OR_RETURN(Document d, parse_json(text, "docker-bake.json"));
  OCIB_ASSIGN_OR_RETURN(std::vector<Config> c, evaluate({d}, env));
  return c.at(0);
}

std::string print(const Result<Config>& c, std::vector<std::string> names = {}, std::vector<std::string> sets = {}) {
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().str());
  if (!c.ok()) return "";
  std::vector<Override> ovs;
  for (const auto& s : sets) {
    auto o = parse_override(s);
    EXPECT_TRUE(o.ok()) << s;
    if (o.ok()) ovs.push_back(*o);
  }
  auto r = resolve(*c, names, ovs);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().str());
  if (!r.ok()) return "";
  return print_json(*r);
}

json printed(const Result<Config>& c, std::vector<std::string> names = {}, std::vector<std::string> sets = {}) {
  std::string s = print(c, std::move(names), std::move(sets));
  return s.empty() ? json() : json::parse(s);
}

TEST(BakePrint, BuildxShapeKeyOrderAndDefaults) {
  auto c = hcl(R"(
group "default" {
  targets = ["app"]
}
target "app" {
  tags = ["app:1"]
  platforms = ["linux/amd64"]
  args = { B = "2", A = "1" }
  target = "final"
})");
  EXPECT_EQ(print(c),
            "{\n"
            "  \"group\": {\n"
            "    \"default\": {\n"
            "      \"targets\": [\n"
            "        \"app\"\n"
            "      ]\n"
            "    }\n"
            "  },\n"
            "  \"target\": {\n"
            "    \"app\": {\n"
            "      \"context\": \".\",\n"
            "      \"dockerfile\": \"Dockerfile\",\n"
            "      \"args\": {\n"
            "        \"A\": \"1\",\n"
            "        \"B\": \"2\"\n"
            "      },\n"
            "      \"tags\": [\n"
            "        \"app:1\"\n"
            "      ],\n"
            "      \"target\": \"final\",\n"
            "      \"platforms\": [\n"
            "        \"linux/amd64\"\n"
            "      ]\n"
            "    }\n"
            "  }\n"
            "}\n");
}

TEST(BakePrint, NamedTargetsMakeTheDefaultGroup) {
  auto c = hcl("target \"a\" {}\ntarget \"b\" {}\ngroup \"g\" { targets = [\"a\"] }\n");
  json j = printed(c, {"g", "b"});
  EXPECT_EQ(j["group"]["default"]["targets"], json({"g", "b"}));
  EXPECT_EQ(j["group"]["g"]["targets"], json({"a"}));
  EXPECT_TRUE(j["target"].contains("a"));
  EXPECT_TRUE(j["target"].contains("b"));
  // Go's encoder escapes <, > and &.
  auto d = hcl("target \"a\" { args = { X = \"<&>\" } }\n");
  EXPECT_NE(print(d, {"a"}).find("\\u003c\\u0026\\u003e"), std::string::npos);
}

TEST(BakeHcl, VariablesInterpolationAndEnvironment) {
  const char* text = R"(
variable "TAG" {
  default = "latest"
}
variable "PUSH" { default = false }
REGISTRY = "reg.example"
# comment
// another
/* block
   comment */
target "app" {
  tags = ["${REGISTRY}/app:${TAG}", "plain$${TAG}", upper("x-${TAG}")]
  args = {
    DEBUG = PUSH ? "no" : "yes"
    WHO = "it's \"quoted\"\t"
  }
  dockerfile-inline = <<-EOT
    FROM scratch
    COPY ${TAG} /
    EOT
}
)";
  json j = printed(hcl(text), {"app"});
  EXPECT_EQ(j["target"]["app"]["tags"], json({"reg.example/app:latest", "plain${TAG}", "X-LATEST"}));
  EXPECT_EQ(j["target"]["app"]["args"]["DEBUG"], "yes");
  EXPECT_EQ(j["target"]["app"]["args"]["WHO"], "it's \"quoted\"\t");
  EXPECT_EQ(j["target"]["app"]["dockerfile-inline"], "FROM scratch\nCOPY latest /\n");
  // The environment overrides a variable block's default, typed like it.
  json e = printed(hcl(text, env_of({{"TAG", "v2"}, {"PUSH", "true"}, {"REGISTRY", "ignored"}})), {"app"});
  EXPECT_EQ(e["target"]["app"]["tags"][0], "reg.example/app:v2");
  EXPECT_EQ(e["target"]["app"]["args"]["DEBUG"], "no");
  auto bad = hcl(text, env_of({{"PUSH", "maybe"}}));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().str().find("is not a bool"), std::string::npos);
}

TEST(BakeHcl, BuiltinVariablesYieldToTheFile) {
  auto d = parse_hcl("target \"a\" { platforms = [BAKE_LOCAL_PLATFORM] }\n", "f.hcl");
  ASSERT_TRUE(d.ok());
  auto cs = evaluate({*d}, env_of({}), {{"BAKE_LOCAL_PLATFORM", "linux/riscv64"}});
  ASSERT_TRUE(cs.ok()) << cs.error().str();
  EXPECT_EQ(printed(cs->at(0), {"a"})["target"]["a"]["platforms"], json({"linux/riscv64"}));
  auto own = parse_hcl("BAKE_LOCAL_PLATFORM = \"mine\"\ntarget \"a\" { tags = [BAKE_LOCAL_PLATFORM] }\n", "f.hcl");
  ASSERT_TRUE(own.ok());
  auto cs2 = evaluate({*own}, env_of({}), {{"BAKE_LOCAL_PLATFORM", "linux/riscv64"}});
  ASSERT_TRUE(cs2.ok());
  EXPECT_EQ(printed(cs2->at(0), {"a"})["target"]["a"]["tags"], json({"mine"}));
}

TEST(BakeHcl, InheritsMergeRules) {
  auto c = hcl(R"(
target "base" {
  context = "src"
  tags = ["base"]
  cache-from = ["type=local,src=a"]
  args = { A = "1", B = "1" }
  platforms = ["linux/amd64"]
}
target "app" {
  inherits = ["base"]
  tags = ["app"]
  cache-from = ["type=local,src=b"]
  args = { B = "2" }
})");
  json t = printed(c, {"app"})["target"]["app"];
  EXPECT_EQ(t["context"], "src");
  EXPECT_EQ(t["tags"], json({"app"}));                                            // replaced
  EXPECT_EQ(t["cache-from"], json({"type=local,src=a", "type=local,src=b"}));     // merged
  EXPECT_EQ(t["args"], json({{"A", "1"}, {"B", "2"}}));                           // key by key
  EXPECT_EQ(t["platforms"], json({"linux/amd64"}));                               // inherited
  EXPECT_FALSE(t.contains("inherits"));
  auto cyc = hcl("target \"a\" { inherits = [\"b\"] }\ntarget \"b\" { inherits = [\"a\"] }\n");
  ASSERT_TRUE(cyc.ok());
  auto r = resolve(*cyc, {"a"}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().str().find("inherits from itself"), std::string::npos) << r.error().str();
}

TEST(BakeHcl, MatrixExpandsAndItsNameIsAGroup) {
  auto c = hcl(R"(
target "build" {
  matrix = {
    tgt = ["web", "api"]
    v = ["1", "2"]
  }
  name = "${tgt}-v${v}"
  target = tgt
  args = { V = v }
})");
  json j = printed(c, {"build"});
  ASSERT_TRUE(j["target"].is_object());
  EXPECT_EQ(j["target"].size(), 4u);
  EXPECT_EQ(j["target"]["web-v2"]["target"], "web");
  EXPECT_EQ(j["target"]["api-v1"]["args"]["V"], "1");
  EXPECT_EQ(j["group"]["build"]["targets"].size(), 4u);
  auto noname = hcl("target \"x\" { matrix = { a = [\"1\"] } }\n");
  ASSERT_FALSE(noname.ok());
  EXPECT_NE(noname.error().str().find("needs a name"), std::string::npos);
}

TEST(BakeHcl, ErrorsNameFileLineAndColumn) {
  auto e1 = parse_hcl("target \"a\" {\n  tags = [\"x\"\n  context = \".\"\n}\n", "f.hcl");
  ASSERT_FALSE(e1.ok());
  EXPECT_EQ(e1.error().str().rfind("f.hcl:3:3: ", 0), 0u) << e1.error().str();
  auto e2 = parse_hcl("target \"a\" {\n  tags = \"unterminated\n}\n", "f.hcl");
  ASSERT_FALSE(e2.ok());
  EXPECT_EQ(e2.error().str().rfind("f.hcl:2:10: unterminated string", 0), 0u) << e2.error().str();
  auto e3 = hcl("target \"a\" {\n  platfroms = [\"linux/amd64\"]\n}\n");
  ASSERT_FALSE(e3.ok());
  EXPECT_NE(e3.error().str().find("docker-bake.hcl:2:3: unknown attribute \"platfroms\""), std::string::npos) << e3.error().str();
  EXPECT_NE(e3.error().str().find("platforms"), std::string::npos);
  auto e4 = hcl("target \"a\" {\n  tags = [\"${NOPE}\"]\n}\n");
  ASSERT_FALSE(e4.ok());
  EXPECT_NE(e4.error().str().find("docker-bake.hcl:2:"), std::string::npos) << e4.error().str();
  EXPECT_NE(e4.error().str().find("unknown variable \"NOPE\""), std::string::npos);
  auto e5 = parse_hcl("target \"a\" {\n", "f.hcl");
  ASSERT_FALSE(e5.ok());
  EXPECT_NE(e5.error().str().find("not closed"), std::string::npos);
  // Deep nesting is an error, not a crash.
  auto e6 = parse_hcl("x = " + std::string(5000, '[') + "\n", "f.hcl");
  ASSERT_FALSE(e6.ok());
  EXPECT_NE(e6.error().str().find("too deeply"), std::string::npos);
}

TEST(BakeHcl, TruncatedInputsNeverCrash) {
  const std::string text = R"(variable "V" { default = "x" }
target "a" {
  tags = ["${V}-${lower("Y")}", <<EOT
hi ${V}
EOT
  ]
  args = { "k" : 1, b = true ? "t" : "f" }
})";
  for (size_t n = 0; n <= text.size(); ++n) {
    auto d = parse_hcl(text.substr(0, n), "f.hcl");
    if (d.ok()) (void)evaluate({*d}, env_of({}));
  }
  ASSERT_TRUE(parse_hcl(text, "f.hcl").ok());
}

TEST(BakePrint, InvalidUtf8IsReplacedNotThrown) {
  auto c = hcl("target \"a\" { description = \"x\xee\xeey\" }\n");
  std::string s = print(c, {"a"});
  EXPECT_NE(s.find("\"description\": \"x\xef\xbf\xbd"), std::string::npos) << s;
}

TEST(BakeResolve, UnknownTargetSuggests) {
  auto c = hcl("target \"frontend\" {}\n");
  ASSERT_TRUE(c.ok());
  auto r = resolve(*c, {"frontnd"}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  EXPECT_NE(r.error().str().find("did you mean \"frontend\""), std::string::npos) << r.error().str();
  auto d = resolve(*c, {}, {});
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.error().str().find("default"), std::string::npos);
}

TEST(BakeSet, KeysPatternsAndAppend) {
  auto c = hcl(R"(
target "a" { tags = ["a:1"] }
target "b" { tags = ["b:1"] })");
  json j = printed(c, {"a", "b"},
                   {"*.platform=linux/amd64,linux/arm64", "a.args.X=1", "a.tags=a:2", "a.tags=a:3", "b.tags+=b:2",
                    "b.push=true", "a.no-cache=true", "b.context=sub"});
  EXPECT_EQ(j["target"]["a"]["platforms"], json({"linux/amd64", "linux/arm64"}));
  EXPECT_EQ(j["target"]["b"]["platforms"], json({"linux/amd64", "linux/arm64"}));
  EXPECT_EQ(j["target"]["a"]["args"]["X"], "1");
  EXPECT_EQ(j["target"]["a"]["tags"], json({"a:2", "a:3"}));
  EXPECT_EQ(j["target"]["b"]["tags"], json({"b:1", "b:2"}));
  EXPECT_EQ(j["target"]["b"]["output"], json({"type=image,push=true"}));
  EXPECT_EQ(j["target"]["a"]["no-cache"], true);
  EXPECT_EQ(j["target"]["b"]["context"], "sub");
  // push marks the image outputs there are; load adds type=docker once.
  auto d = hcl("target \"a\" { output = [\"type=oci,dest=x.tar\", \"type=image,name=r/a\"] }\n");
  json k = printed(d, {"a"}, {"a.push=true", "a.load=true", "a.load=true"});
  EXPECT_EQ(k["target"]["a"]["output"], json({"type=oci,dest=x.tar", "type=image,name=r/a,push=true", "type=docker"}));
  ASSERT_TRUE(c.ok());
  auto bad = parse_override("a.tags");
  EXPECT_FALSE(bad.ok());
  auto o = parse_override("a.platfrom=x");
  ASSERT_TRUE(o.ok());
  auto r = resolve(*c, {"a"}, {*o});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().str().find("did you mean \"platform\""), std::string::npos) << r.error().str();
  auto none = parse_override("zzz.tags=x");
  ASSERT_TRUE(none.ok());
  auto r2 = resolve(*c, {"a"}, {*none});
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.error().str().find("no target being built matches"), std::string::npos);
}

const char* kHcl = R"(
variable "TAG" { default = "1" }
group "default" { targets = ["api", "web"] }
target "base" {
  dockerfile = "app.Dockerfile"
  args = { BASE = "busybox" }
}
target "web" {
  inherits = ["base"]
  target = "web"
  tags = ["web:${TAG}"]
}
target "api" {
  inherits = ["base"]
  context = "api"
  tags = ["api:${TAG}"]
  labels = { team = "x" }
})";

const char* kJson = R"({
  "variable": {"TAG": {"default": "1"}},
  "group": {"default": {"targets": ["api", "web"]}},
  "target": {
    "base": {"dockerfile": "app.Dockerfile", "args": {"BASE": "busybox"}},
    "web": {"inherits": ["base"], "target": "web", "tags": ["web:${TAG}"]},
    "api": {"inherits": ["base"], "context": "api", "tags": ["api:${TAG}"], "labels": {"team": "x"}}
  }
})";

const char* kCompose = R"(
services:
  web:
    image: web:${TAG:-1}
    build:
      dockerfile: app.Dockerfile
      target: web
      args:
        BASE: busybox
  api:
    image: api:${TAG:-1}
    build:
      context: api
      dockerfile: app.Dockerfile
      args:
        - BASE=busybox
      labels:
        team: x
  db:
    image: postgres
)";

TEST(BakeFormats, HclJsonAndComposeResolveTheSame) {
  std::string a = print(hcl(kHcl));
  std::string b = print(json_file(kJson));
  std::string c = print(read_compose(kCompose, "compose.yaml", env_of({})));
  EXPECT_FALSE(a.empty());
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, c);
  // The environment reaches all three.
  auto env = env_of({{"TAG", "7"}});
  json ja = printed(hcl(kHcl, env)), jb = printed(json_file(kJson, env)),
       jc = printed(read_compose(kCompose, "compose.yaml", env));
  EXPECT_EQ(ja["target"]["web"]["tags"], json({"web:7"}));
  EXPECT_EQ(ja, jb);
  EXPECT_EQ(ja, jc);
}

TEST(BakeFormats, JsonAndComposeErrorsNameTheFile) {
  auto j = parse_json("{\n  \"target\": {\n    \"a\": {,}\n  }\n}\n", "b.json");
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.error().str().rfind("b.json:3:", 0), 0u) << j.error().str();
  auto y = read_compose("services:\n  a:\n    build:\n      contxt: .\n", "compose.yaml", env_of({}));
  ASSERT_FALSE(y.ok());
  EXPECT_EQ(y.error().str().rfind("compose.yaml:4:7: unknown key services.a.build.contxt", 0), 0u) << y.error().str();
  EXPECT_NE(y.error().str().find("context"), std::string::npos);
  auto bad = read_compose("services: [\n", "compose.yaml", env_of({}));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().str().rfind("compose.yaml:", 0), 0u);
  auto v = json_file(R"({"target": {"a": {"tags": ["${NOPE}"]}}})");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().str(), "docker-bake.json (target \"a\", tags): unknown variable \"NOPE\"");
  auto u = json_file(R"({"target": {"a": {"tag": ["x"]}}})");
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.error().str().find("target \"a\""), std::string::npos) << u.error().str();
}

TEST(BakeFormats, LaterFilesMerge) {
  auto d1 = parse_hcl("variable \"T\" { default = \"a\" }\ntarget \"x\" { tags = [\"x:${T}\"]\n args = { A = \"1\" } }\n", "one.hcl");
  auto d2 = parse_hcl("variable \"T\" { default = \"b\" }\ntarget \"x\" { args = { B = \"2\" } }\n", "two.hcl");
  ASSERT_TRUE(d1.ok() && d2.ok());
  auto cs = evaluate({*d1, *d2}, env_of({}));
  ASSERT_TRUE(cs.ok()) << cs.error().str();
  Config c;
  for (const auto& x : *cs) merge_config(c, x);
  json j = printed(c, {"x"});
  EXPECT_EQ(j["target"]["x"]["tags"], json({"x:b"}));  // the later variable default wins
  EXPECT_EQ(j["target"]["x"]["args"], json({{"A", "1"}, {"B", "2"}}));
  EXPECT_EQ(format_of("docker-bake.hcl", ""), Format::kHcl);
  EXPECT_EQ(format_of("x", "{\"target\": {}}"), Format::kJson);
  EXPECT_EQ(format_of("x", "services:\n  a: {}\n"), Format::kCompose);
}

}  // namespace
}  // namespace ocib::bake
