// libFuzzer target: the bake file readers (HCL subset, JSON, compose) and the resolver must
// not crash, leak or hit UB on any input. See fuzz/README.md.

#include <cstddef>
#include <cstdint>
#include <string>

#include "bake/definition.h"
#include "bake/files.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ocib::bake;
  std::string text(reinterpret_cast<const char*>(data), size);
  Env env = [](const std::string& k) -> std::optional<std::string> {
    if (k == "TAG") return std::string("v1");
    return std::nullopt;
  };
  auto resolve_all = [](const Config& c) {
    std::vector<std::string> names;
    for (const auto& [n, t] : c.targets) names.push_back(n);
    for (const auto& [n, g] : c.groups) names.push_back(n);
    auto o = parse_override("*.tags+=x");
    auto r = resolve(c, names, o.ok() ? std::vector<Override>{*o} : std::vector<Override>{});
    if (r.ok()) (void)print_json(*r);
  };
  for (auto parse : {parse_hcl, parse_json}) {
    auto d = parse(text, "f");
    if (!d.ok()) continue;
    auto cs = evaluate({*d}, env);
    if (cs.ok())
      for (const auto& c : *cs) resolve_all(c);
  }
  auto y = read_compose(text, "compose.yaml", env);
  if (y.ok()) resolve_all(*y);
  return 0;
}
