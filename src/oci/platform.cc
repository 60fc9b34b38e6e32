#include "oci/platform.h"

#include <algorithm>

#include "base/spec.h"

namespace ocib::oci {

Platform normalize(Platform p) {
  std::string& a = p.architecture;
  if (a == "aarch64") a = "arm64";
  else if (a == "x86_64" || a == "x86-64") a = "amd64";
  else if (a == "i386" || a == "i686") a = "386";
  else if (a == "armhf") a = "arm", p.variant = "v7";
  else if (a == "armel") a = "arm", p.variant = "v6";
  if (a == "arm64" && p.variant == "v8") p.variant.clear();
  if (a == "arm" && p.variant.empty()) p.variant = "v7";
  if (a == "arm" && (p.variant == "7" || p.variant == "6" || p.variant == "5")) p.variant = "v" + p.variant;
  return p;
}

bool matches(const Platform& have, const Platform& want) {
  Platform h = normalize(have), w = normalize(want);
  if (h.os != w.os || h.architecture != w.architecture) return false;
  return h.variant == w.variant || have.variant.empty() || want.variant.empty();
}

bool same(const Platform& a, const Platform& b) {
  Platform x = normalize(a), y = normalize(b);
  return x.os == y.os && x.architecture == y.architecture && x.variant == y.variant;
}

Platform host() { return normalize(Platform::host()); }

bool runs_natively(const Platform& p) {
  Platform h = host(), n = normalize(p);
  return n.os == h.os && (n.architecture == h.architecture || (h.architecture == "amd64" && n.architecture == "386"));
}

std::string str(const Platform& p) {
  return p.os + "/" + p.architecture + (p.variant.empty() ? "" : "/" + p.variant);
}

Result<Platform> parse(const std::string& spec) {
  std::vector<std::string> parts;
  for (size_t i = 0;;) {
    size_t j = spec.find('/', i);
    parts.push_back(spec.substr(i, j == std::string::npos ? std::string::npos : j - i));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  if (parts.size() > 3 || std::any_of(parts.begin(), parts.end(), [](const std::string& x) { return x.empty(); }))
    return Error::invalid("invalid platform \"" + spec + "\" (OS/ARCH[/VARIANT], e.g. linux/arm64)");
  Platform p;
  if (parts.size() == 1) {
    p.architecture = parts[0];
  } else {
    p.os = parts[0];
    p.architecture = parts[1];
    if (parts.size() == 3) p.variant = parts[2];
  }
  p.os = ascii_lower(p.os);
  p.architecture = ascii_lower(p.architecture);
  // Any OS may be named (BuildKit builds a COPY-only image for darwin or windows); only
  // running a command needs linux, and the planner says so at the RUN.
  return normalize(p);
}

Result<std::vector<Platform>> parse_list(const std::string& spec) {
  std::vector<Platform> out;
  for (size_t i = 0; i <= spec.size();) {
    size_t j = spec.find(',', i);
    if (j == std::string::npos) j = spec.size();
    if (j > i) {
      OCIB_ASSIGN_OR_RETURN(Platform pl, parse(spec.substr(i, j - i)));
      for (const auto& o : out)
        if (same(o, pl)) return Error::invalid("--platform lists " + str(pl) + " twice");
      out.push_back(pl);
    }
    i = j + 1;
  }
  if (out.empty()) return Error::invalid("--platform needs at least one platform (e.g. linux/amd64,linux/arm64)");
  return out;
}

int best_match(const std::vector<Platform>& candidates, const Platform& want) {
  int best = -1, best_score = -1;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const Platform& p = candidates[i];
    if (p.os != want.os || p.architecture != want.architecture) continue;
    int score = p.variant == want.variant ? 2 : (p.variant.empty() || want.variant.empty()) ? 1 : -1;
    if (score > best_score) {
      best = static_cast<int>(i);
      best_score = score;
    }
  }
  return best;
}

}  // namespace ocib::oci
