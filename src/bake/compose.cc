// Compose files as bake reads them (buildx's compose.go): each service with a `build`
// section is a target, and "default" is the group of them all.

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>

#include "bake/files.h"
#include "base/spec.h"

namespace ocib::bake {

using nlohmann::json;

namespace {

SourceLoc loc_of(const std::string& path, const YAML::Node& n) {
  YAML::Mark m = n.Mark();
  if (m.line < 0) return {path, 0, 0};
  return {path, m.line + 1, m.column + 1};
}

// Compose's interpolation: $$, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?msg}, ${VAR?msg}, $VAR.
Result<std::string> interpolate(const std::string& s, const Env& env, const SourceLoc& at) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '$') {
      out += s[i];
      continue;
    }
    if (i + 1 < s.size() && s[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    if (i + 1 < s.size() && s[i + 1] == '{') {
      size_t e = s.find('}', i + 2);
      if (e == std::string::npos) return Error::at(at, "unclosed ${ in \"" + s + "\"");
      std::string inner = s.substr(i + 2, e - i - 2);
      size_t op = inner.find_first_of(":-?");
      std::string name = inner.substr(0, op), rest = op == std::string::npos ? "" : inner.substr(op);
      if (name.empty()) return Error::at(at, "invalid interpolation \"${" + inner + "}\"");
      auto v = env(name);
      bool colon = !rest.empty() && rest[0] == ':';
      std::string mod = colon ? rest.substr(1) : rest;
      bool unset = !v || (colon && v->empty());
      if (!mod.empty() && mod[0] == '-') {
        out += unset ? mod.substr(1) : *v;
      } else if (!mod.empty() && mod[0] == '?') {
        if (unset) return Error::at(at, "required variable " + name + " is missing a value: " + mod.substr(1));
        out += *v;
      } else if (mod.empty() && !colon) {
        out += v ? *v : "";
      } else {
        return Error::at(at, "invalid interpolation \"${" + inner + "}\"");
      }
      i = e;
      continue;
    }
    size_t j = i + 1;
    while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
    if (j == i + 1) {
      out += '$';
      continue;
    }
    auto v = env(s.substr(i + 1, j - i - 1));
    out += v ? *v : "";
    i = j - 1;
  }
  return out;
}

struct Reader {
  std::string path;
  const Env& env;

  Result<std::string> scalar(const YAML::Node& n, const std::string& what) {
    if (!n.IsScalar()) return Error::at(loc_of(path, n), what + ": want a string");
    return interpolate(n.Scalar(), env, loc_of(path, n));
  }
  Result<json> list(const YAML::Node& n, const std::string& what) {
    if (n.IsScalar()) {  // one value
      OCIB_ASSIGN_OR_RETURN(std::string s, scalar(n, what));
      return json::array({s});
    }
    if (!n.IsSequence()) return Error::at(loc_of(path, n), what + ": want a list of strings");
    json out = json::array();
    for (const auto& x : n) {
      OCIB_ASSIGN_OR_RETURN(std::string s, scalar(x, what));
      out.push_back(s);
    }
    return out;
  }
  // A map, or a list of KEY=VALUE (a KEY alone takes the environment's value, if any).
  Result<json> map(const YAML::Node& n, const std::string& what) {
    json out = json::object();
    if (n.IsMap()) {
      for (const auto& kv : n) {
        OCIB_ASSIGN_OR_RETURN(std::string k, scalar(kv.first, what));
        if (kv.second.IsNull()) continue;
        OCIB_ASSIGN_OR_RETURN(std::string v, scalar(kv.second, what + " " + k));
        out[k] = v;
      }
      return out;
    }
    if (!n.IsSequence()) return Error::at(loc_of(path, n), what + ": want a map or a list of KEY=VALUE");
    for (const auto& x : n) {
      OCIB_ASSIGN_OR_RETURN(std::string s, scalar(x, what));
      auto eq = s.find('=');
      if (eq == std::string::npos) {
        if (auto v = env(s)) out[s] = *v;
      } else {
        out[s.substr(0, eq)] = s.substr(eq + 1);
      }
    }
    return out;
  }
  Result<bool> boolean(const YAML::Node& n, const std::string& what) {
    OCIB_ASSIGN_OR_RETURN(std::string s, scalar(n, what));
    std::string l = ascii_lower(s);
    if (l == "true" || l == "yes") return true;
    if (l == "false" || l == "no") return false;
    return Error::at(loc_of(path, n), what + ": want true or false, not \"" + s + "\"");
  }

  Result<Target> service(const std::string& name, const YAML::Node& svc, const YAML::Node& top) {
    Target t;
    t.name = name;
    t.loc = loc_of(path, svc);
    auto slash = path.rfind('/');
    t.dir = slash == std::string::npos || path == "-" ? "." : slash == 0 ? "/" : path.substr(0, slash);
    const YAML::Node b = svc["build"];
    json tags = json::array();
    if (svc["image"]) {
      OCIB_ASSIGN_OR_RETURN(std::string image, scalar(svc["image"], "services." + name + ".image"));
      tags.push_back(image);
    }
    if (b.IsScalar()) {
      OCIB_ASSIGN_OR_RETURN(std::string ctx, scalar(b, "services." + name + ".build"));
      t.attrs["context"] = ctx;
    } else if (b.IsMap()) {
      const std::string pre = "services." + name + ".build.";
      for (const auto& kv : b) {
        if (!kv.first.IsScalar()) return Error::at(loc_of(path, kv.first), pre + ": a key must be a string");
        const std::string k = kv.first.Scalar();
        const YAML::Node& v = kv.second;
        if (v.IsNull()) continue;
        if (k == "context" || k == "dockerfile" || k == "target" || k == "network" || k == "shm_size") {
          OCIB_ASSIGN_OR_RETURN(std::string s, scalar(v, pre + k));
          t.attrs[k == "shm_size" ? "shm-size" : k] = s;
        } else if (k == "dockerfile_inline") {
          OCIB_ASSIGN_OR_RETURN(std::string s, scalar(v, pre + k));
          t.attrs["dockerfile-inline"] = s;
        } else if (k == "args" || k == "labels" || k == "additional_contexts") {
          OCIB_ASSIGN_OR_RETURN(json m, map(v, pre + k));
          t.attrs[k == "additional_contexts" ? "contexts" : k] = m;
        } else if (k == "tags") {
          OCIB_ASSIGN_OR_RETURN(json l, list(v, pre + k));
          for (auto& x : l) tags.push_back(x);
        } else if (k == "cache_from" || k == "cache_to" || k == "platforms") {
          OCIB_ASSIGN_OR_RETURN(json l, list(v, pre + k));
          t.attrs[k == "cache_from" ? "cache-from" : k == "cache_to" ? "cache-to" : k] = l;
        } else if (k == "no_cache" || k == "pull") {
          OCIB_ASSIGN_OR_RETURN(bool x, boolean(v, pre + k));
          t.attrs[k == "no_cache" ? "no-cache" : k] = x;
        } else if (k == "secrets") {
          // Compose secrets name top-level `secrets:` entries (file: or environment:).
          if (!v.IsSequence()) return Error::at(loc_of(path, v), pre + k + ": want a list");
          json out = json::array();
          for (const auto& s : v) {
            std::string id;
            if (s.IsMap()) {
              OCIB_ASSIGN_OR_RETURN(id, scalar(s["source"], pre + k + ".source"));
            } else {
              OCIB_ASSIGN_OR_RETURN(id, scalar(s, pre + k));
            }
            const YAML::Node def = top["secrets"] ? top["secrets"][id] : YAML::Node();
            if (!def || !def.IsMap()) return Error::at(loc_of(path, s), pre + k + ": no top-level secret \"" + id + "\"");
            if (def["file"]) {
              OCIB_ASSIGN_OR_RETURN(std::string f, scalar(def["file"], "secrets." + id + ".file"));
              out.push_back("id=" + id + ",src=" + f);
            } else if (def["environment"]) {
              OCIB_ASSIGN_OR_RETURN(std::string e, scalar(def["environment"], "secrets." + id + ".environment"));
              out.push_back("id=" + id + ",env=" + e);
            } else {
              return Error::at(loc_of(path, def), "secrets." + id + ": want file: or environment:");
            }
          }
          t.attrs["secret"] = out;
        } else if (k == "ssh") {
          if (v.IsMap()) {
            json out = json::array();
            for (const auto& kv2 : v) {
              OCIB_ASSIGN_OR_RETURN(std::string id, scalar(kv2.first, pre + k));
              OCIB_ASSIGN_OR_RETURN(std::string p, scalar(kv2.second, pre + k + "." + id));
              out.push_back(id + "=" + p);
            }
            t.attrs["ssh"] = out;
          } else {
            OCIB_ASSIGN_OR_RETURN(json l, list(v, pre + k));
            t.attrs["ssh"] = l;
          }
        } else if (k == "extra_hosts" || k == "isolation" || k == "privileged" || k == "ulimits" || k == "entitlements" ||
                   k == "x-bake") {
          return Error::at(loc_of(path, kv.first), pre + k + " is not supported by ocib bake");
        } else {
          return Error::at(loc_of(path, kv.first),
                           "unknown key " + pre + k +
                               did_you_mean(k, {"context", "dockerfile", "dockerfile_inline", "args", "labels", "tags",
                                                "target", "cache_from", "cache_to", "platforms", "network", "no_cache",
                                                "pull", "shm_size", "additional_contexts", "secrets", "ssh"}));
        }
      }
    } else {
      return Error::at(loc_of(path, b), "services." + name + ".build: want a context path or a map");
    }
    if (!t.attrs.count("context")) t.attrs["context"] = ".";
    if (!tags.empty()) t.attrs["tags"] = tags;
    return t;
  }
};

bool valid_service(const std::string& n) {
  if (n.empty() || !std::isalnum(static_cast<unsigned char>(n[0]))) return false;
  return std::all_of(n.begin(), n.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; });
}

}  // namespace

Result<Config> read_compose(const std::string& text, const std::string& path, const Env& env) {
  YAML::Node top;
  try {
    top = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return Error::at({path, e.mark.line + 1, e.mark.column + 1}, "invalid YAML: " + e.msg);
  }
  try {
    if (!top.IsMap()) return Error::at({path, 1, 1}, "a compose file is a map with services:");
    const YAML::Node services = top["services"];
    if (!services || !services.IsMap()) return Error::at(loc_of(path, top), "a compose file needs a services: map");
    Reader r{path, env};
    Config c;
    Group g;
    g.name = "default";
    g.loc = loc_of(path, services);
    for (const auto& kv : services) {
      if (!kv.first.IsScalar()) return Error::at(loc_of(path, kv.first), "a service name must be a string");
      std::string name = kv.first.Scalar();
      if (!kv.second.IsMap()) return Error::at(loc_of(path, kv.second), "service \"" + name + "\" must be a map");
      if (!kv.second["build"]) continue;  // an image-only service builds nothing
      if (!valid_service(name))
        return Error::at(loc_of(path, kv.first), "invalid service name \"" + name + "\" for a bake target (letters, digits, _ and -)");
      OCIB_ASSIGN_OR_RETURN(Target t, r.service(name, kv.second, top));
      c.targets[name] = std::move(t);
      g.targets.push_back(name);
    }
    std::sort(g.targets.begin(), g.targets.end());
    c.groups["default"] = g;
    return c;
  } catch (const YAML::Exception& e) {
    return Error::at({path, e.mark.line + 1, e.mark.column + 1}, "compose file: " + e.msg);
  }
}

Format format_of(const std::string& path, const std::string& text) {
  auto ends = [&](const char* suf) {
    std::string s = suf;
    return path.size() >= s.size() && path.compare(path.size() - s.size(), s.size(), s) == 0;
  };
  if (ends(".hcl")) return Format::kHcl;
  if (ends(".json")) return Format::kJson;
  if (ends(".yml") || ends(".yaml")) return Format::kCompose;
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '{') {
    auto j = json::parse(text, nullptr, false);
    if (!j.is_discarded()) return Format::kJson;
  }
  if (text.rfind("services:", 0) == 0 || text.find("\nservices:") != std::string::npos) return Format::kCompose;
  return Format::kHcl;
}

}  // namespace ocib::bake
