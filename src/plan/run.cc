#include "plan/planner_internal.h"

#include <algorithm>

#include "base/fs.h"
#include "base/sha256.h"
#include "base/spec.h"
#include "oci/platform.h"

namespace ocib::plan::detail {

namespace {

// BuildKit's runCommandString: "|N k=v ..." for the N ARGs declared in scope (each key once, at
// its first declaration, with the value the command sees), then the arguments joined by spaces
// (exec form too).
std::string run_history(const StageState& st, const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  std::vector<std::string> parts, keys;
  for (const auto& [k, v] : st.arg_decls) {
    if (std::find(keys.begin(), keys.end(), k) != keys.end()) continue;
    keys.push_back(k);
    std::string val;
    for (const auto& [k2, v2] : st.arg_decls)
      if (k2 == k) val = v2.value_or("");
    for (const auto& e : env)
      if (e.size() > k.size() && e.compare(0, k.size() + 1, k + "=") == 0) val = e.substr(k.size() + 1);
    parts.push_back(k + "=" + val);
  }
  if (!parts.empty()) parts.insert(parts.begin(), "|" + std::to_string(parts.size()));
  parts.insert(parts.end(), argv.begin(), argv.end());
  return join(parts, " ");
}

}  // namespace

Result<RunMount> Planner::parse_mount(const std::string& spec, StageState& st,
                                            const dockerfile::Instruction& ins) {
  RunMount m;
  std::string type = "bind";
  std::map<std::string, std::string> kv;
  for (const std::string& part : split_commas(spec)) {
    auto eq = part.find('=');
    std::string k = part.substr(0, eq), v = eq == std::string::npos ? "" : part.substr(eq + 1);
    if (eq == std::string::npos && (k == "rw" || k == "readwrite" || k == "ro" || k == "readonly" || k == "required"))
      v = "true";
    kv[k] = v;
  }
  for (const auto& [k, v] : kv) {
    const std::string kv_text = k + "=" + v;
    if (k == "type") type = v;
    else if (k == "target" || k == "dst" || k == "destination") m.target = v;
    else if (k == "source" || k == "src") m.source = v;
    else if (k == "id") m.id = v;
    else if (k == "rw" || k == "readwrite") m.rw = v != "false";
    else if (k == "ro" || k == "readonly") m.rw = v == "false";
    else if (k == "required") m.required = v != "false";
    else if (k == "env") m.env = v;
    else if (k == "sharing") {
      if (v != "shared" && v != "private" && v != "locked") return at(ins, "invalid sharing=" + v + " (shared, private, locked)");
      m.locked = v == "locked" || v == "private";
    } else if (k == "mode") {
      char* end = nullptr;
      unsigned long mode = std::strtoul(v.c_str(), &end, 8);
      if (v.empty() || *end || mode > 07777) return at(ins, "invalid mount mode \"" + v + "\"");
      m.mode = static_cast<uint32_t>(mode);
    } else if (k == "size") {
      char* end = nullptr;
      unsigned long long n = std::strtoull(v.c_str(), &end, 10);
      std::string unit = end ? end : "";
      uint64_t mult = unit.empty() || unit == "b" ? 1 : unit == "k" || unit == "kb" ? 1024 :
                      unit == "m" || unit == "mb" ? 1 << 20 : unit == "g" || unit == "gb" ? 1ull << 30 : 0;
      if (!mult) return at(ins, "invalid tmpfs size \"" + v + "\"");
      m.size = n * mult;
    } else if (k == "from" && named_context(v) && !named_context(v)->dir.empty()) {
      m.context_dir = named_context(v)->dir;
      m.context_fd = named_context(v)->fd->get();
    } else if (k == "from" && named_context(v)) {
      return at(ins, "RUN --mount from=" + v + ": an image build context cannot be mounted yet (use a stage FROM it)");
    } else if (k == "from") {
      OCIB_ASSIGN_OR_RETURN(size_t from, stage_by_ref(v, ins));
      if (&plan_.stages[from] == &st) return at(ins, "RUN --mount from= cannot refer to its own stage");
      if (from > stage_index(st))
        return at(ins, "cannot mount from stage \"" + v + "\" to \"" +
                           (kv.count("target") ? kv["target"] : kv.count("dst") ? kv["dst"] : kv["destination"]) +
                           "\", stage needs to be defined before current command");
      st.uses.push_back({from, ins.line});
      OCIB_TRY(plan_stage(from));
      m.from_stage = true;
      m.from_context = false;
      m.from_top = plan_.stages[from].top;
    } else if (k == "uid" || k == "gid") {
      char* end = nullptr;
      errno = 0;
      unsigned long id = std::strtoul(v.c_str(), &end, 10);
      if (v.empty() || *end || errno || id > 0xfffffffeUL || v[0] == '-')
        return at(ins, "--mount " + k + "=" + v + ": not a numeric id");
      (k == "uid" ? m.uid : m.gid) = static_cast<uint32_t>(id);
    } else {
      return at(ins, "unexpected key '" + k + "' in '" + kv_text + "'" +
                         did_you_mean_bk(k, {"type", "target", "source", "id", "readonly", "required", "env", "sharing",
                                             "mode", "size", "from", "uid", "gid"}));
    }
  }
  if (type == "ssh") {
    // The agent forwarded with --ssh ID (checked by the solver: an optional mount without one
    // is left out, a required one fails); BuildKit's defaults: id "default", mode 0600, the
    // target /run/buildkit/ssh_agent.N (set by plan_run) unless given.
    m.type = RunMount::Type::kSsh;
    if (m.id.empty()) m.id = "default";
    if (!m.mode) m.mode = 0600;
    if (!m.target.empty()) {
      std::string wd = st.config.working_dir.empty() ? "/" : st.config.working_dir;
      if (m.target.front() != '/') m.target = fs::join(wd, m.target);
      m.target = fs::clean(m.target);
    }
    return m;
  }
  if (type == "bind") m.type = RunMount::Type::kBind;
  else if (type == "cache") m.type = RunMount::Type::kCache;
  else if (type == "tmpfs") m.type = RunMount::Type::kTmpfs;
  else if (type == "secret") m.type = RunMount::Type::kSecret;
  else return at(ins, "unsupported mount type \"" + type + "\"" + did_you_mean_bk(type, {"bind", "cache", "tmpfs", "secret", "ssh"}));
  if (m.type == RunMount::Type::kSecret) {
    if (m.id.empty()) m.id = m.target.empty() ? "" : fs::basename(m.target);
    if (m.id.empty()) return at(ins, "RUN --mount=type=secret needs id= or target=");
    if (m.target.empty() && m.env.empty()) m.target = "/run/secrets/" + m.id;
    return m;
  }
  if (m.target.empty()) return at(ins, "RUN --mount=type=" + type + " needs target=");
  std::string wd = st.config.working_dir.empty() ? "/" : st.config.working_dir;
  if (m.target.front() != '/') m.target = fs::join(wd, m.target);
  m.target = fs::clean(m.target);
  if (m.type == RunMount::Type::kCache && m.id.empty()) m.id = m.target;
  // A cache is writable unless readonly/ro is given (BuildKit); a bind is read-only unless rw.
  if (m.type == RunMount::Type::kCache) m.cache_readonly = (kv.count("readonly") || kv.count("ro")) && !m.rw;
  if (m.type == RunMount::Type::kBind) m.source = fs::clean("/" + m.source).substr(1);
  return m;
}

Status Planner::plan_run(StageState& st, const std::string& label, const dockerfile::Instruction& ins) {
  if (st.platform.os != "linux")
    return at(ins, "RUN for platform " + oci::str(st.platform) +
                       ": only linux images can be built with RUN steps (COPY-only images may target any OS)");
  bool insecure = false;
  if (const auto* f = ins.flag("security")) {
    if (f->value == "insecure") {
      if (!std::count(req_.allow.begin(), req_.allow.end(), "security.insecure"))
        return at(ins, "entitlement security.insecure is not allowed (ocib build --allow security.insecure)");
      insecure = true;
    } else if (f->value != "sandbox") {
      return at(ins, "RUN --security=" + f->value + ": unknown mode (sandbox or insecure)");
    }
  }
  Step s;
  s.kind = Step::Kind::kRun;
  s.loc = {df_->filename, ins.line, 0};
  s.insecure = insecure;
  s.name = label;
  s.stage = st.display;
  s.parent = st.top;
  s.network = req_.network;
  if (const auto* f = ins.flag("network")) {
    if (f->value == "none") s.network = Network::kNone;
    else if (f->value == "host") s.network = Network::kHost;
    else if (f->value != "default") return at(ins, "unsupported network mode \"" + f->value + "\"");
    // "default": the build's mode (--network), as in BuildKit.
  }
  if (s.network == Network::kHost && !host_network_warned_ &&
      !std::count(req_.allow.begin(), req_.allow.end(), "network.host")) {
    // BuildKit refuses host network without the entitlement; we still allow it, for now.
    host_network_warned_ = true;
    sources_.note("warning: host network for RUN without the entitlement: add --allow network.host "
                   "(it will be required in a later version)");
  }
  std::vector<std::string> shell =
      st.config.shell.empty() ? std::vector<std::string>{"/bin/sh", "-c"} : st.config.shell;
  json mount_key = json::array();
  std::vector<Step::KeyInput> key_inputs;
  for (const auto& f : ins.flags) {
    if (f.name != "mount") continue;
    // As BuildKit: from= is not expanded (a '$' anywhere but at its end is refused).
    for (const std::string& part : split_commas(f.value)) {
      auto eq = part.find('=');
      if (eq == std::string::npos) continue;
      std::string key = part.substr(0, eq), v = part.substr(eq + 1);
      std::transform(key.begin(), key.end(), key.begin(), ::tolower);
      if (auto d = v.find('$'); key == "from" && d != std::string::npos && d != v.size() - 1)
        return at(ins, "'from' doesn't support variable expansion, define alias stage instead");
    }
    OCIB_ASSIGN_OR_RETURN(std::string spec, word(f.value, st, ins));
    OCIB_ASSIGN_OR_RETURN(RunMount m, parse_mount(spec, st, ins));
    if (m.absent) continue;
    if (m.type == RunMount::Type::kSsh && m.target.empty())
      m.target = "/run/buildkit/ssh_agent." +
                 std::to_string(std::count_if(s.mounts.begin(), s.mounts.end(),
                                              [](const RunMount& x) { return x.type == RunMount::Type::kSsh; }));
    json mk = {{"type", type_name(m.type)}, {"target", m.target}, {"id", m.id}, {"source", m.source}, {"rw", m.rw},
               {"env", m.env}, {"size", m.size}, {"mode", m.mode}};
    if (m.cache_readonly) mk["readonly"] = true;
    // A cache seeded from a stage (from=, source=): the stage runs first; as in BuildKit its
    // content is not part of the key (a cache never is).
    if (m.type == RunMount::Type::kCache && m.from_stage && m.from_top) s.deps.push_back(m.from_top);
    if (m.type == RunMount::Type::kBind) {
      if (m.from_stage) {
        mk["from"] = m.from_top ? m.from_top->key : "empty";
        if (m.from_top) {
          s.deps.push_back(m.from_top);
          // Keyed by the files it mounts once the stage has run (effective_key).
          key_inputs.push_back({"/mounts/" + std::to_string(mount_key.size()) + "/from", m.from_top, "", true,
                                {m.source.empty() ? "." : m.source}});
        }
      } else {
        // Bind mounts of the context: their content is an input of the step.
        auto h = m.context_fd >= 0 ? sources_.hash(m.context_fd, {m.source.empty() ? "." : m.source}, copy::SourceFilter{}, nullptr)
                                   : sources_.hash(req_.context_fd, {m.source.empty() ? "." : m.source}, req_.context_filter, nullptr);
        if (!h.ok()) return at(ins, "RUN --mount=type=bind: " + h.error().message() + " in build context");
        mk["context"] = *h;
      }
    }
    mount_key.push_back(mk);
    s.mounts.push_back(std::move(m));
  }
  if (ins.json) {
    s.argv = *ins.json;
  } else if (!ins.heredocs.empty() && dockerfile::parse_heredoc_word(ins.rest)) {
    // The whole command is one heredoc: its body is the script.
    std::string script = ins.heredocs.front().data();
    if (script.rfind("#!", 0) == 0) {
      // As BuildKit: the script becomes an executable file under /dev/pipes and runs directly.
      RunMount pipe;
      pipe.type = RunMount::Type::kPipe;
      pipe.target = "/dev/pipes/" + ins.heredocs.front().name;
      pipe.source = script;
      s.mounts.push_back(pipe);
      s.argv = {pipe.target};
    } else {
      s.argv = shell;
      s.argv.push_back(script);
    }
  } else {
    // Heredocs after command text reach the shell as written; it does the redirection.
    std::string cmd = ins.rest;
    for (const auto& h : ins.heredocs) cmd += "\n" + h.content + h.name;
    s.argv = shell;
    s.argv.push_back(cmd);
  }
  if (s.argv.empty()) return at(ins, "RUN needs a command");
  // Build args in scope reach the command's environment (not the image config); ENV wins.
  std::map<std::string, std::string> env_map;
  std::vector<std::string> env = st.config.env;
  for (const auto& e : env) env_map[e.substr(0, e.find('='))] = e;
  for (const auto& [k, v] : st.args)
    if (!env_map.count(k)) env.push_back(k + "=" + v);
  s.env = env;
  // Proxy build args, as BuildKit's ProxyEnv: matched without regard to case (the lowercase
  // spelling wins), given to the command in both spellings, kept out of key and history.
  for (const char* name : {"http_proxy", "https_proxy", "ftp_proxy", "no_proxy", "all_proxy"}) {
    const std::string lower = name, upper = ascii_upper(lower);
    std::optional<std::string> value;
    for (const auto& [k, v] : req_.build_args)
      if (ascii_lower(k) == lower) {
        used_args_.insert(k);
        if (!value || k == lower) value = v;
      }
    if (!value) continue;
    for (const std::string& k : {upper, lower})
      if (!st.args.count(k) && !env_map.count(k)) s.proxy_env.push_back(k + "=" + *value);
  }
  s.user = st.config.user;
  s.cwd = st.config.working_dir.empty() ? "/" : st.config.working_dir;
  json k = {{"v", kKeyVersion}, {"op", "run"}, {"parent", s.parent ? s.parent->key : ""},
            {"argv", s.argv}, {"env", s.env}, {"user", s.user}, {"cwd", s.cwd},
            // The network mode is an input, as in BuildKit's ExecOp: the (new) default mode
            // keys apart from none, whose results keep their keys. A default step run on the
            // host's network (no slirp4netns here) keys as default: same request, same key.
            {"net", s.network == Network::kHost      ? "host"
                    : s.network == Network::kDefault ? "default"
                                                               : "none"}};
  if (auto h = req_.build_args.find(kHostnameArg); h != req_.build_args.end()) {
    k["hostname"] = h->second;
    s.hostname = h->second;
  }
  if (insecure) k["security"] = "insecure";
  if (!req_.extra_hosts.empty()) {
    s.extra_hosts = req_.extra_hosts;
    json h = json::array();
    for (const auto& [host, ip] : req_.extra_hosts) h.push_back(host + "=" + ip);
    k["hosts"] = h;
  }
  if (req_.shm_size) k["shm"] = s.shm_size = req_.shm_size;
  if (!req_.ulimits.empty()) {
    s.ulimits = req_.ulimits;
    json u = json::array();
    for (const auto& l : req_.ulimits) u.push_back(l.text);
    k["ulimits"] = u;
  }
  // The same command on the same (e.g. scratch) parent differs per architecture; host
  // builds keep their keys.
  if (!oci::runs_natively(st.platform)) {
    s.emulated = oci::normalize(st.platform);
    k["platform"] = oci::str(*s.emulated);
  } else if (!oci::same(st.platform, oci::host())) {
    k["platform"] = oci::str(oci::normalize(st.platform));
  }
  if (!mount_key.empty()) k["mounts"] = mount_key;  // secrets by id only, never by value
  for (const auto& m : s.mounts)
    if (m.type == RunMount::Type::kPipe) k["pipe"] = Sha256::hex(m.source);
  if (s.parent) key_inputs.push_back({"/parent", s.parent, "", false, {}});
  set_key(s, k, std::move(key_inputs));
  if (s.parent) s.deps.push_back(s.parent);
  Step* p = add_step(std::move(s));
  st.top = p;
  st.own_steps.push_back(p);
  st.history.push_back({"RUN " + run_history(st, p->argv, p->env) + " # buildkit", p, "", false});
  return {};
}

}  // namespace ocib::plan::detail
