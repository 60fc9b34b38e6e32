#include "plan/planner_internal.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "base/duration.h"
#include "base/fs.h"
#include "base/sha256.h"
#include "base/spec.h"

namespace ocib::plan::detail {

namespace {

// Go's fmt %q of a []string, as BuildKit's CMD/ENTRYPOINT history: ["a" "b c"].
std::string go_quoted(const std::vector<std::string>& v) {
  std::string out = "[";
  for (const auto& s : v) {
    if (out.size() > 1) out += ' ';
    out += '"';
    for (unsigned char c : s) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\t': out += "\\t"; break;
        case '\r': out += "\\r"; break;
        default:
          if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
          } else {
            out += static_cast<char>(c);
          }
      }
    }
    out += '"';
  }
  return out + "]";
}

}  // namespace

Status Planner::plan_config(StageState& st, const dockerfile::Stage& stage, size_t pos, const std::string& label,
                            const dockerfile::Instruction& ins) {
  // pos == npos: an ONBUILD trigger of the base image, run as part of FROM.
  const bool trigger = pos == std::string::npos;
  const std::string& kw = ins.keyword;
  // Instructions that change only the image config (and WORKDIR's mkdir).
  auto hist = [&](const std::string& text) { st.history.push_back({text, nullptr, "", true}); };
  auto set_env = [&](std::vector<std::string>& list, const std::string& k, const std::string& v) {
    for (auto& e : list)
      if (e.compare(0, k.size() + 1, k + "=") == 0) {
        e = k + "=" + v;
        return;
      }
    list.push_back(k + "=" + v);
  };
  // ENV, ARG and LABEL expand every pair with the environment from before the instruction, as
  // BuildKit: `ENV A=1 B=${A:-x}` gives B=x unless A was already set.
  if (kw == "ENV") {
    std::string text = "ENV";
    std::vector<std::pair<std::string, std::string>> vals;
    for (const auto& [k, v] : ins.raw_kvs) {
      OCIB_ASSIGN_OR_RETURN(std::string val, word(v.value_or(""), st, ins));
      vals.emplace_back(k, std::move(val));
    }
    for (const auto& [k, val] : vals) {
      set_env(st.config.env, k, val);
      text += " " + k + "=" + val;
    }
    hist(text);
  } else if (kw == "ARG") {
    // History as BuildKit's: "ARG k=v" with the value in effect, "ARG k" when unset.
    std::string text = "ARG";
    std::vector<std::pair<std::string, std::string>> vals;
    for (const auto& [k, v] : ins.raw_kvs) {
      std::string val;
      if (auto it = req_.build_args.find(k); it != req_.build_args.end()) {
        val = it->second;
        used_args_.insert(k);
      } else if (v) {
        OCIB_ASSIGN_OR_RETURN(val, word(*v, st, ins));
      } else if (auto m = meta_args_.find(k); m != meta_args_.end()) {
        val = m->second;
      } else {
        st.arg_decls.push_back({k, std::nullopt});  // declared without value and none given: unset
        text += " " + k;
        continue;
      }
      st.arg_decls.push_back({k, val});
      text += " " + k + "=" + val;
      vals.emplace_back(k, std::move(val));
    }
    for (auto& [k, val] : vals) st.args[k] = std::move(val);
    hist(text);
  } else if (kw == "LABEL" || kw == "MAINTAINER") {
    if (kw == "MAINTAINER") {
      st.author = ins.rest;  // as BuildKit: the config's author, not a label
      hist("MAINTAINER " + ins.rest);
    } else {
      std::string text = "LABEL";
      for (const auto& [k, v] : ins.raw_kvs) {
        OCIB_ASSIGN_OR_RETURN(std::string key, word(k, st, ins));
        OCIB_ASSIGN_OR_RETURN(std::string val, word(v.value_or(""), st, ins));
        st.config.labels[key] = val;  // labels are not in the environment: order does not matter
        text += " " + key + "=" + val;
      }
      hist(text);
    }
  } else if (kw == "WORKDIR") {
    if (ins.raw_words.empty()) return at(ins, "WORKDIR requires exactly one argument");
    OCIB_ASSIGN_OR_RETURN(std::string dir, word(ins.raw_words.front(), st, ins));
    std::string cur = st.config.working_dir.empty() ? "/" : st.config.working_dir;
    // As BuildKit's NormalizeWorkdir: an absolute path is kept as written ("/test4/"), a
    // relative one is joined to the current directory and cleaned.
    if (dir.empty()) return at(ins, "WORKDIR requires exactly one argument");
    st.config.working_dir = dir.front() == '/' ? dir : fs::clean(fs::join(cur, dir));
    if (st.config.working_dir == "/") {
      hist("WORKDIR /");
      return {};
    }
    // As BuildKit: the directory is created (owned by the current USER) in a layer.
    Step s;
    s.kind = Step::Kind::kWorkdir;
  s.loc = {df_->filename, ins.line, 0};
    s.name = label;
    s.stage = st.display;
    s.parent = st.top;
    s.workdir = st.config.working_dir;
    s.user = st.config.user;
    json k = {{"v", kKeyVersion}, {"op", "workdir"}, {"parent", s.parent ? s.parent->key : ""},
              {"path", s.workdir}, {"user", s.user}};
    std::vector<Step::KeyInput> key_inputs;
    if (s.parent) key_inputs.push_back({"/parent", s.parent, "", false, {}});
    set_key(s, k, std::move(key_inputs));
    if (s.parent) s.deps.push_back(s.parent);
    Step* p = add_step(std::move(s));
    st.top = p;
    st.history.push_back({"WORKDIR " + st.config.working_dir, p, "", false});
  } else if (kw == "USER") {
    if (ins.raw_words.empty()) return at(ins, "USER requires exactly one argument");
    OCIB_ASSIGN_OR_RETURN(st.config.user, word(ins.raw_words.front(), st, ins));
    hist("USER " + st.config.user);
  } else if (kw == "EXPOSE") {
    // As BuildKit: each word expands into words (`EXPOSE $PORTS` with PORTS="80 443": two ports).
    std::vector<std::string> ports;
    for (const auto& w : ins.raw_words) {
      auto ws = dockerfile::process_words(w, vars_for(st), df_->escape);
      if (!ws.ok()) return at(ins, ws.error().message());
      ports.insert(ports.end(), ws->begin(), ws->end());
    }
    std::set<std::string> these;  // BuildKit's history: the sorted port list, as Go prints it
    for (std::string p : ports) {
      // "80", "80/udp", "8000-8002/tcp" (a range expands to each port, as Docker does).
      std::string proto = "tcp";
      if (auto slash = p.find('/'); slash != std::string::npos) {
        proto = p.substr(slash + 1);
        p = p.substr(0, slash);
      }
      std::transform(proto.begin(), proto.end(), proto.begin(), ::tolower);
      if (proto != "tcp" && proto != "udp" && proto != "sctp") return at(ins, "invalid EXPOSE protocol \"" + proto + "\"");
      auto dash = p.find('-');
      auto lo = parse_u32(p.substr(0, dash));
      auto hi = dash == std::string::npos ? lo : parse_u32(p.substr(dash + 1));
      if (!lo || !hi || *lo > 65535 || *hi > 65535 || *hi < *lo) return at(ins, "invalid containerPort: " + p);
      for (uint32_t port = *lo; port <= *hi; ++port) {
        std::string e = std::to_string(port) + "/" + proto;
        these.insert(e);
        if (std::find(st.config.exposed_ports.begin(), st.config.exposed_ports.end(), e) ==
            st.config.exposed_ports.end())
          st.config.exposed_ports.push_back(e);
      }
    }
    std::string text = "EXPOSE [";
    for (const auto& e : these) text += (text.back() == '[' ? "" : " ") + e;
    hist(text + "]");
  } else if (kw == "CMD" || kw == "ENTRYPOINT") {
    std::vector<std::string> v;
    if (ins.json) {
      v = *ins.json;
    } else {
      v = st.config.shell.empty() ? std::vector<std::string>{"/bin/sh", "-c"} : st.config.shell;
      v.push_back(ins.rest);
    }
    if (kw == "CMD") {
      st.config.cmd = v;
    } else {
      st.config.entrypoint = v;
      // Docker: an ENTRYPOINT resets a CMD inherited from the base.
      bool cmd_here = false;
      for (size_t i = 0; !trigger && i < pos; ++i) cmd_here = cmd_here || stage.body[i].keyword == "CMD";
      if (!cmd_here) st.config.cmd.reset();
    }
    hist(kw + " " + go_quoted(v));
  } else if (kw == "SHELL") {
    if (!ins.json || ins.json->empty()) return at(ins, "SHELL requires the arguments to be in JSON form");
    st.config.shell = *ins.json;
    hist("SHELL [" + join(*ins.json, " ") + "]");
  } else if (kw == "VOLUME") {
    std::vector<std::string> vols = ins.json ? *ins.json : std::vector<std::string>{};
    if (!ins.json)
      for (const auto& w : ins.raw_words) {
        OCIB_ASSIGN_OR_RETURN(std::string e, word(w, st, ins));
        vols.push_back(e);
      }
    for (const auto& v : vols)
      if (std::find(st.config.volumes.begin(), st.config.volumes.end(), v) == st.config.volumes.end())
        st.config.volumes.push_back(v);
    hist("VOLUME [" + join(vols, " ") + "]");
  } else if (kw == "HEALTHCHECK") {
    json hc = json::object();
    if (!ins.words.empty() && ins.words[0] == "NONE") {
      hc["Test"] = {"NONE"};
    } else {
      std::vector<std::string> test;
      if (ins.json) {
        test = {"CMD"};
        test.insert(test.end(), ins.json->begin(), ins.json->end());
      } else {
        test = {"CMD-SHELL", ins.words.size() > 1 ? ins.words[1] : ins.rest};
      }
      hc["Test"] = test;
      for (auto [flag, key] : {std::pair{"interval", "Interval"}, {"timeout", "Timeout"},
                               {"start-period", "StartPeriod"}, {"start-interval", "StartInterval"}}) {
        const auto* f = ins.flag(flag);
        if (!f) continue;
        auto d = parse_go_duration(f->value);
        if (!d) return at(ins, "HEALTHCHECK --" + std::string(flag) + ": invalid duration \"" + f->value + "\"");
        if (*d != 0 && *d < 1000000)
          return at(ins, "HEALTHCHECK --" + std::string(flag) + " \"" + f->value + "\" cannot be less than 1ms");
        if (*d) hc[key] = *d;
      }
      if (const auto* f = ins.flag("retries")) {
        char* end = nullptr;
        long n = std::strtol(f->value.c_str(), &end, 10);
        if (f->value.empty() || *end) return at(ins, "HEALTHCHECK --retries: invalid number \"" + f->value + "\"");
        if (n < 0) return at(ins, "--retries cannot be negative (" + f->value + ")");
        if (n) hc["Retries"] = n;
      }
    }
    st.config.healthcheck = hc;
    hist("HEALTHCHECK " + hc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else if (kw == "ONBUILD") {
    std::string t = ins.rest;
    for (const auto& h : ins.heredocs) t += "\n" + h.content + h.name;
    st.config.onbuild.push_back(t);
    // As BuildKit: a trigger is recorded in the config only, no history entry.
  } else if (kw == "STOPSIGNAL") {
    OCIB_ASSIGN_OR_RETURN(st.config.stop_signal, word(ins.rest, st, ins));
    hist("STOPSIGNAL " + st.config.stop_signal);
  } else {
    return at(ins, kw + " is not supported yet");
  }
  return {};
}

}  // namespace ocib::plan::detail
