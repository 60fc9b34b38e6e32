#include "bake/definition.h"

#include <fnmatch.h>

#include <algorithm>
#include <functional>
#include <set>

#include "base/spec.h"

namespace ocib::bake {

using nlohmann::json;

const std::vector<Field>& fields() {
  // buildx's Target struct order (its JSON encoding prints the fields in this order).
  static const std::vector<Field> kFields = {
      {"description", Kind::kString, false},  {"annotations", Kind::kList, true},
      {"attest", Kind::kList, true},          {"context", Kind::kString, false},
      {"contexts", Kind::kMap, false},        {"dockerfile", Kind::kString, false},
      {"dockerfile-inline", Kind::kString, false}, {"args", Kind::kMap, false},
      {"labels", Kind::kMap, false},          {"tags", Kind::kList, false},
      {"cache-from", Kind::kList, true},      {"cache-to", Kind::kList, false},
      {"target", Kind::kString, false},       {"secret", Kind::kList, true},
      {"ssh", Kind::kList, true},             {"platforms", Kind::kList, false},
      {"output", Kind::kList, false},         {"pull", Kind::kBool, false},
      {"no-cache", Kind::kBool, false},       {"network", Kind::kString, false},
      {"no-cache-filter", Kind::kList, true}, {"shm-size", Kind::kString, false},
      {"ulimits", Kind::kList, true},         {"call", Kind::kString, false},
      {"entitlements", Kind::kList, true},
  };
  return kFields;
}

const Field* find_field(const std::string& name) {
  for (const auto& f : fields())
    if (name == f.name) return &f;
  return nullptr;
}

void merge_target(Target& t, const Target& t2) {
  for (const auto& [k, v] : t2.attrs) {
    const Field* f = find_field(k);
    if (!f) continue;
    auto it = t.attrs.find(k);
    if (it == t.attrs.end()) {
      t.attrs[k] = v;
    } else if (f->kind == Kind::kMap) {
      for (const auto& [mk, mv] : v.items()) it->second[mk] = mv;
    } else if (f->kind == Kind::kList && f->merge) {
      for (const auto& x : v) it->second.push_back(x);
    } else {
      it->second = v;
    }
  }
  // A later definition's context (and so its directory) is the one paths are relative to.
  if (t2.attrs.count("context") || t.dir.empty()) t.dir = t2.dir;
  t.inherits.insert(t.inherits.end(), t2.inherits.begin(), t2.inherits.end());
  if (t.loc.file.empty()) t.loc = t2.loc;
}

void merge_config(Config& into, const Config& from) {
  for (const auto& [name, t] : from.targets) {
    auto it = into.targets.find(name);
    if (it == into.targets.end()) into.targets[name] = t;
    else merge_target(it->second, t);
  }
  for (const auto& [name, g] : from.groups) {
    auto it = into.groups.find(name);
    if (it == into.groups.end()) {
      into.groups[name] = g;
      continue;
    }
    for (const auto& t : g.targets)
      if (std::find(it->second.targets.begin(), it->second.targets.end(), t) == it->second.targets.end())
        it->second.targets.push_back(t);
  }
}

namespace {

Result<std::string> scalar_string(const json& v, const std::string& what, const SourceLoc& loc) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return std::string(v.get<bool>() ? "true" : "false");
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number()) {
    std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
    return s;
  }
  return Error::at(loc, what + ": want a string, not " + std::string(v.type_name()));
}

}  // namespace

Result<json> coerce(const Field& f, const json& v, const SourceLoc& loc) {
  const std::string what = std::string("attribute \"") + f.name + "\"";
  switch (f.kind) {
    case Kind::kString: {
      OCIB_ASSIGN_OR_RETURN(std::string s, scalar_string(v, what, loc));
      return json(s);
    }
    case Kind::kBool:
      if (v.is_boolean()) return v;
      if (v.is_string() && (v == "true" || v == "false")) return json(v == "true");
      return Error::at(loc, what + ": want true or false, not " + v.dump(-1, ' ', false, json::error_handler_t::replace));
    case Kind::kList: {
      if (!v.is_array()) return Error::at(loc, what + ": want a list of strings, not " + std::string(v.type_name()));
      json out = json::array();
      for (const auto& x : v) {
        OCIB_ASSIGN_OR_RETURN(std::string s, scalar_string(x, what + " entries", loc));
        out.push_back(s);
      }
      return out;
    }
    case Kind::kMap: {
      if (!v.is_object()) return Error::at(loc, what + ": want a map of strings, not " + std::string(v.type_name()));
      json out = json::object();
      for (const auto& [k, x] : v.items()) {
        if (x.is_null()) continue;  // buildx: a null arg is left unset
        OCIB_ASSIGN_OR_RETURN(std::string s, scalar_string(x, what + " \"" + k + "\"", loc));
        out[k] = s;
      }
      return out;
    }
  }
  return v;
}

Result<Override> parse_override(const std::string& spec) {
  Override o;
  auto eq = spec.find('=');
  if (eq == std::string::npos) return Error::invalid("--set \"" + spec + "\": want TARGET.KEY=VALUE");
  std::string lhs = spec.substr(0, eq);
  o.value = spec.substr(eq + 1);
  if (!lhs.empty() && lhs.back() == '+') {
    o.append = true;
    lhs.pop_back();
  }
  auto dot = lhs.find('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == lhs.size())
    return Error::invalid("--set \"" + spec + "\": want TARGET.KEY=VALUE (TARGET may be a pattern such as *)");
  o.pattern = lhs.substr(0, dot);
  o.key = lhs.substr(dot + 1);
  return o;
}

namespace {

// buildx's --set keys (some differ from the file's attribute names).
std::string canonical_key(const std::string& k) {
  if (k == "platform") return "platforms";
  if (k == "secrets") return "secret";
  if (k == "outputs") return "output";
  if (k == "no-cache-filter" || k == "nocache-filter") return "no-cache-filter";
  return k;
}

Status apply_overrides(Target& t, const std::vector<const Override*>& ovs) {
  std::set<std::string> replaced;  // list keys a plain `=` already replaced in this run
  for (const Override* o : ovs) {
    const std::string spec = o->pattern + "." + o->key + (o->append ? "+=" : "=") + o->value;
    std::string key = canonical_key(o->key);
    auto dot = key.find('.');
    if (dot != std::string::npos) {
      std::string base = key.substr(0, dot), sub = key.substr(dot + 1);
      const Field* f = find_field(base);
      if (!f || f->kind != Kind::kMap)
        return Error::invalid("--set " + spec + ": unknown key \"" + o->key + "\" (args.NAME, labels.NAME, contexts.NAME)");
      t.attrs[base][sub] = o->value;
      continue;
    }
    if (key == "push" || key == "load") {
      if (o->value != "true" && o->value != "false") return Error::invalid("--set " + spec + ": want true or false");
      if (o->value != "true") continue;
      // As buildx's push/load overrides: push=true on the image outputs there are (a
      // registry output pushes anyway), else a new type=image,push=true; load adds a
      // type=docker output unless there is one.
      json& outs = t.attrs["output"];
      if (!outs.is_array()) outs = json::array();
      auto type_of = [](const json& e) {
        auto parsed = e.is_string() ? parse_typed_spec(e.get<std::string>()) : Result<TypedSpec>(Error::invalid(""));
        return parsed.ok() ? parsed->type : std::string();
      };
      bool found = false;
      for (auto& e : outs) {
        std::string ty = type_of(e);
        if (key == "push" && (ty == "image" || ty == "registry")) {
          found = true;
          auto parsed = parse_typed_spec(e.get<std::string>());
          if (ty == "image" && parsed.ok() && parsed->get("push") != "true") e = e.get<std::string>() + ",push=true";
        }
        if (key == "load" && ty == "docker") found = true;
      }
      if (!found) outs.push_back(key == "push" ? "type=image,push=true" : "type=docker");
      continue;
    }
    const Field* f = find_field(key);
    if (!f || key == "description") {
      std::vector<std::string> names = {"push", "load", "platform", "secrets", "args.NAME", "labels.NAME", "contexts.NAME"};
      for (const auto& x : fields()) names.push_back(x.name);
      return Error::invalid("--set " + spec + ": unknown key \"" + o->key + "\"" + did_you_mean(o->key, names));
    }
    switch (f->kind) {
      case Kind::kString:
        t.attrs[key] = o->value;
        break;
      case Kind::kBool:
        if (o->value != "true" && o->value != "false") return Error::invalid("--set " + spec + ": want true or false");
        t.attrs[key] = o->value == "true";
        break;
      case Kind::kList: {
        // As buildx: a value may be a comma list for platforms; repeated `=` accumulate.
        std::vector<std::string> vals = key == "platforms" ? split_commas(o->value) : std::vector<std::string>{o->value};
        json& cur = t.attrs[key];
        if (!cur.is_array() || (!o->append && !replaced.count(key))) cur = json::array();
        if (!o->append) replaced.insert(key);
        for (auto& v : vals) cur.push_back(v);
        break;
      }
      case Kind::kMap:
        return Error::invalid("--set " + spec + ": \"" + key + "\" takes a key: " + key + ".NAME=VALUE");
    }
  }
  return {};
}

bool is_glob(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

}  // namespace

Result<Resolved> resolve(const Config& c, const std::vector<std::string>& names_in,
                         const std::vector<Override>& overrides) {
  std::vector<std::string> names = names_in.empty() ? std::vector<std::string>{"default"} : names_in;
  std::vector<std::string> known;
  for (const auto& [n, t] : c.targets) known.push_back(n);
  for (const auto& [n, g] : c.groups) known.push_back(n);
  Resolved r;
  std::vector<std::string> want;  // target names, first mention first
  std::function<Status(const std::string&, std::vector<std::string>&)> expand =
      [&](const std::string& n, std::vector<std::string>& stack) -> Status {
    if (auto g = c.groups.find(n); g != c.groups.end()) {
      if (std::find(stack.begin(), stack.end(), n) != stack.end())
        return Error::at(g->second.loc, "group \"" + n + "\" contains itself (" + join(stack, " -> ") + " -> " + n + ")");
      r.groups[n] = g->second;
      stack.push_back(n);
      for (const auto& m : g->second.targets) OCIB_TRY(expand(m, stack));
      stack.pop_back();
      return {};
    }
    if (c.targets.count(n)) {
      if (std::find(want.begin(), want.end(), n) == want.end()) want.push_back(n);
      return {};
    }
    if (!stack.empty())
      return Error::at(c.groups.at(stack.back()).loc,
                       "group \"" + stack.back() + "\" names \"" + n + "\", which is no target or group" + did_you_mean(n, known));
    if (n == "default" && names_in.empty()) {
      return Error::invalid("no target or group named \"default\" in the bake file: name the targets to build" +
                            (known.empty() ? std::string(" (it defines none)") : " (" + join(known, ", ") + ")"));
    }
    return Error::invalid("failed to find target \"" + n + "\"" + did_you_mean(n, known));
  };
  for (const auto& n : names) {
    std::vector<std::string> stack;
    OCIB_TRY(expand(n, stack));
  }
  for (const auto& n : names) {
    if (n == "default") continue;
    Group& d = r.groups["default"];
    d.name = "default";
    if (std::find(d.targets.begin(), d.targets.end(), n) == d.targets.end()) d.targets.push_back(n);
  }

  // Which overrides apply to which target.
  std::map<std::string, std::vector<const Override*>> per;
  for (const auto& o : overrides) {
    bool any = false;
    for (const auto& t : want)
      if (o.pattern == t || (is_glob(o.pattern) && ::fnmatch(o.pattern.c_str(), t.c_str(), 0) == 0)) {
        per[t].push_back(&o);
        any = true;
      }
    if (!any) {
      std::string msg = "--set " + o.pattern + "." + o.key + ": no target being built matches \"" + o.pattern + "\"";
      return Error::invalid(msg + did_you_mean(o.pattern, want) + " (building " + join(want, ", ") + ")");
    }
  }

  std::function<Result<Target>(const std::string&, std::vector<std::string>&)> target =
      [&](const std::string& n, std::vector<std::string>& stack) -> Result<Target> {
    auto it = c.targets.find(n);
    if (it == c.targets.end()) {
      const Target& child = c.targets.at(stack.back());
      return Error::at(child.loc, "target \"" + stack.back() + "\" inherits from \"" + n + "\", which is no target" +
                                      did_you_mean(n, known));
    }
    if (std::find(stack.begin(), stack.end(), n) != stack.end())
      return Error::at(it->second.loc, "target \"" + n + "\" inherits from itself (" + join(stack, " -> ") + " -> " + n + ")");
    stack.push_back(n);
    Target parents;
    for (const auto& p : it->second.inherits) {
      OCIB_ASSIGN_OR_RETURN(Target pt, target(p, stack));
      merge_target(parents, pt);
    }
    stack.pop_back();
    Target self = it->second;
    self.inherits.clear();
    Target m;
    m.name = n;
    m.attrs["context"] = ".";
    m.attrs["dockerfile"] = "Dockerfile";
    merge_target(m, parents);
    merge_target(m, self);
    m.name = n;
    m.inherits.clear();
    m.loc = it->second.loc;
    // A target without a context of its own or from a parent: paths are relative to its file.
    if (!self.attrs.count("context") && !parents.attrs.count("context")) m.dir = self.dir;
    return m;
  };
  for (const auto& n : want) {
    std::vector<std::string> stack;
    OCIB_ASSIGN_OR_RETURN(Target t, target(n, stack));
    OCIB_TRY(apply_overrides(t, per[n]));
    r.targets[n] = std::move(t);
    r.order.push_back(n);
  }
  return r;
}

std::string print_json(const Resolved& r) {
  using ojson = nlohmann::ordered_json;
  ojson doc = ojson::object();
  if (!r.groups.empty()) {
    ojson groups = ojson::object();
    for (const auto& [n, g] : r.groups) groups[n] = ojson{{"targets", g.targets}};
    doc["group"] = groups;
  }
  ojson targets = ojson::object();
  for (const auto& [n, t] : r.targets) {
    ojson o = ojson::object();
    for (const auto& f : fields()) {
      auto it = t.attrs.find(f.name);
      if (it == t.attrs.end()) continue;
      const json& v = it->second;
      // Go's omitempty: empty lists and maps, and false... bools are pointers in buildx, so
      // a false that was set is printed.
      if ((v.is_array() || v.is_object()) && v.empty()) continue;
      o[f.name] = ojson::parse(v.dump(-1, ' ', false, json::error_handler_t::replace));
    }
    targets[n] = o;
  }
  doc["target"] = targets;
  std::string s = doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  // Go's encoder escapes <, > and & (they only occur inside strings here).
  std::string out;
  for (char ch : s) {
    if (ch == '<') out += "\\u003c";
    else if (ch == '>') out += "\\u003e";
    else if (ch == '&') out += "\\u0026";
    else out += ch;
  }
  return out + "\n";
}

}  // namespace ocib::bake
