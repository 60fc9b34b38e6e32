// ocib: the commands. What each takes on its command line is the table in table.cc (one
// source for parsing, --help, the man pages and the completions); here each flag's value is
// turned into the library's options, every value checked before any work (exit 2), and the
// library called.

#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bake/bake.h"
#include "base/idmap.h"
#include "base/log.h"
#include "base/spec.h"
#include "control/control.h"
#include "control/ssh_keys.h"
#include "cache/cache_io.h"
#include "exporter/daemon_load.h"
#include "exporter/exporter.h"
#include "exporter/timeline.h"
#include "images/images.h"
#include "oci/platform.h"
#include "control/inspect.h"
#include "registry/auth.h"
#include "registry/registry.h"

#include <arpa/inet.h>
#include <sys/resource.h>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include "base/fs.h"
#include "dockerfile/dockerignore.h"
#include "base/sha256.h"
#include "cli/config.h"
#include "cli/signals.h"
#include "cli/table.h"
#include "sandbox/sandbox.h"
#include "sandbox/seccomp.h"
#include "store/maintenance.h"
#include "store/store.h"

namespace {

using ocib::cli::Parsed;

// The configuration files' settings; command-line flags override them.
ocib::cli::Config g_config;

int fail(const std::string& msg, int code = 1) {
  ocib::log::error(msg);
  return code;
}

// One function per flag name: turns the value into options, or returns the exit status of a
// usage error (after fail()). Every flag of the command's table entry has one.
using Handlers = std::map<std::string, std::function<int(const std::string&)>>;

int apply_flags(const Parsed& p, const Handlers& h) {
  for (const auto& occ : p.flags) {
    auto it = h.find(occ.flag->name);
    if (it == h.end()) return fail("internal error: flag --" + occ.flag->name + " has no handler", 1);
    if (int rc = it->second(occ.value)) return rc;
  }
  return 0;
}

// A file a build writes when it ends (--timeline, --metadata-file, --iidfile): checked now, so
// a typo in the path fails before the build rather than after it.
int check_output_file(const std::string& flag, const std::string& v, const std::string& example) {
  if (v.empty() || v == "-") return fail(flag + " needs a file name (" + example + ")", 2);
  if (ocib::fs::is_dir(v))
    return fail(flag + " " + v + ": is a directory (give a file name, e.g. " + ocib::fs::join(v, example) + ")", 2);
  if (std::string dir = ocib::fs::dirname(v); !ocib::fs::is_dir(dir))
    return fail(flag + " " + v + ": directory " + dir + " does not exist", 2);
  return 0;
}

int check_timeline_path(const std::string& v) { return check_output_file("--timeline", v, "timeline.html"); }

// The defaults of a build from the configuration file (flags override them).
void config_defaults(ocib::control::Options& o) {
  if (g_config.jobs) o.jobs = *g_config.jobs;
  if (g_config.progress) o.progress = *g_config.progress;
  if (g_config.network == "none") o.network = ocib::sandbox::Network::kNone;
  if (g_config.network == "host") o.network = ocib::sandbox::Network::kHost;
  if (g_config.network == "default") o.network = ocib::sandbox::Network::kDefault;
  o.insecure_registries = g_config.insecure_registries;
  o.registry_mirrors = g_config.mirrors;
}

// The flags build and bake share, onto the control::Options every build starts from. The
// table has already checked choices (--progress, --pull, --allow) and numbers (-j).
Handlers common_handlers(ocib::control::Options& o, bool* provenance_given) {
  return {
      {"progress", [&o](const std::string& v) { o.progress = v; return 0; }},
      {"quiet", [&o](const std::string& v) { if (v == "true") o.progress = "quiet"; return 0; }},
      {"pull",
       [&o](const std::string& v) {
         o.pull = v == "true" || v == "always" ? "always" : v == "false" || v == "missing" ? "missing" : "never";
         return 0;
       }},
      {"jobs", [&o](const std::string& v) { o.jobs = std::atoi(v.c_str()); return 0; }},
      {"allow",
       [&o](const std::string& v) {
         for (const auto& e : ocib::split_commas(v)) o.allow.push_back(e);
         return 0;
       }},
      {"no-cache", [&o](const std::string& v) { o.no_cache = v == "true"; return 0; }},
      {"provenance",
       [&o, provenance_given](const std::string& v) {
         if (auto p = ocib::exporter::parse_provenance(v, o.attest); !p.ok()) return fail(p.error().str(), 2);
         *provenance_given = true;
         return 0;
       }},
      {"sbom",
       [&o](const std::string& v) {
         if (auto p = ocib::exporter::parse_sbom(v, o.attest); !p.ok()) return fail(p.error().str(), 2);
         return 0;
       }},
  };
}

// buildx: id=ID,src=FILE | id=ID,env=VAR | id=ID (env var ID or ./ID), split as buildx's CSV.
int parse_secret(const std::string& v, ocib::control::Options& o) {
  auto fields = ocib::split_csv(v);
  if (!fields.ok()) return fail("invalid --secret \"" + v + "\": " + fields.error().message(), 2);
  ocib::control::Options::Secret sec;
  std::string id;
  for (const auto& part : *fields) {
    auto eq = part.find('=');
    std::string k = part.substr(0, eq), val = eq == std::string::npos ? "" : part.substr(eq + 1);
    if (k == "id") id = val;
    else if (k == "src" || k == "source") sec.file = val;
    else if (k == "env") sec.env = val;
    else if (k == "type") {
    } else return fail("invalid --secret \"" + k + "\" (id=, src=, env=)" + ocib::did_you_mean(k, {"id", "src", "source", "env", "type"}), 2);
  }
  if (id.empty()) return fail("--secret needs id=", 2);
  if (sec.file.empty() && sec.env.empty()) sec.env = id;
  o.secrets[id] = sec;
  return 0;
}

// Docker's NAME=SOFT[:HARD] (-1: unlimited), e.g. nofile=1024:2048.
int parse_ulimit(const std::string& v, ocib::control::Options& o) {
  static const std::map<std::string, int> kLimits = {
      {"core", RLIMIT_CORE},       {"cpu", RLIMIT_CPU},         {"data", RLIMIT_DATA},
      {"fsize", RLIMIT_FSIZE},     {"locks", RLIMIT_LOCKS},     {"memlock", RLIMIT_MEMLOCK},
      {"msgqueue", RLIMIT_MSGQUEUE}, {"nice", RLIMIT_NICE},     {"nofile", RLIMIT_NOFILE},
      {"nproc", RLIMIT_NPROC},     {"rss", RLIMIT_RSS},         {"rtprio", RLIMIT_RTPRIO},
      {"rttime", RLIMIT_RTTIME},   {"sigpending", RLIMIT_SIGPENDING}, {"stack", RLIMIT_STACK}};
  auto eq = v.find('=');
  std::string name = eq == std::string::npos ? v : v.substr(0, eq);
  auto it = kLimits.find(name);
  std::vector<std::string> names;
  for (const auto& [n, r] : kLimits) names.push_back(n);
  if (it == kLimits.end())
    return fail("invalid --ulimit \"" + v + "\": unknown limit \"" + name + "\"" + ocib::did_you_mean(name, names), 2);
  std::string vals = eq == std::string::npos ? "" : v.substr(eq + 1);
  auto num = [](const std::string& x) -> std::optional<int64_t> {
    if (x == "-1") return -1;
    if (auto n = ocib::parse_u32(x)) return static_cast<int64_t>(*n);
    return std::nullopt;
  };
  auto colon = vals.find(':');
  auto soft = num(vals.substr(0, colon));
  auto hard = colon == std::string::npos ? soft : num(vals.substr(colon + 1));
  if (!soft || !hard || (*hard >= 0 && (*soft < 0 || *soft > *hard)))
    return fail("invalid --ulimit \"" + v + "\" (NAME=SOFT[:HARD], soft <= hard, e.g. nofile=1024:2048)", 2);
  o.ulimits.push_back({name + "=" + vals, it->second, *soft, *hard});
  return 0;
}

// buildx: HOST:IP (or HOST=IP); the address is checked now.
int parse_add_host(const std::string& v, ocib::control::Options& o) {
  auto sep = v.find('=') != std::string::npos ? v.find('=') : v.find(':');
  std::string host = sep == std::string::npos ? "" : v.substr(0, sep), ip = sep == std::string::npos ? "" : v.substr(sep + 1);
  if (ip.size() > 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
  unsigned char buf[16];
  if (host.empty() || (inet_pton(AF_INET, ip.c_str(), buf) != 1 && inet_pton(AF_INET6, ip.c_str(), buf) != 1))
    return fail("invalid --add-host \"" + v + "\" (HOST:IP, e.g. db.local:10.0.0.5)", 2);
  o.extra_hosts.push_back({host, ip});
  return 0;
}

// Docker's RAMInBytes: a number with an optional b, k, m or g (binary units).
int parse_shm_size(const std::string& v, ocib::control::Options& o) {
  char* end = nullptr;
  errno = 0;
  double n = std::strtod(v.c_str(), &end);
  std::string unit = ocib::ascii_lower(end ? std::string(end) : "");
  if (!unit.empty() && unit.back() == 'b' && unit.size() == 2) unit.pop_back();
  double mult = unit.empty() || unit == "b" ? 1 : unit == "k" ? 1024.0 : unit == "m" ? 1048576.0 : unit == "g" ? 1073741824.0 : -1;
  if (v.empty() || errno || mult < 0 || n <= 0 || end == v.c_str())
    return fail("invalid --shm-size \"" + v + "\" (bytes, or with a unit: 128m, 1g)", 2);
  o.shm_size = static_cast<uint64_t>(n * mult);
  return 0;
}

int cmd_build(const Parsed& p) {
  ocib::control::Options o;
  bool push = false;  // --push
  bool load = false;  // --load
  bool provenance_given = false;  // --provenance / --attest type=provenance
  bool fix = false;   // --fix (with --print=lint)
  bool check = false;  // --check / --call=check
  config_defaults(o);
  std::string print;
  Handlers h = common_handlers(o, &provenance_given);
  auto add = [&h](const char* name, std::function<int(const std::string&)> fn) { h[name] = std::move(fn); };
  add("file", [&](const std::string& v) { o.dockerfile = v; return 0; });
  add("tag", [&](const std::string& v) { o.tags.push_back(v); return 0; });
  add("target", [&](const std::string& v) { o.target = v; return 0; });
  add("build-context", [&](const std::string& v) {
    auto eq = v.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == v.size())
      return fail("--build-context takes NAME=DIR|docker-image://REF|oci-layout://DIR[:TAG]", 2);
    o.build_contexts[v.substr(0, eq)] = v.substr(eq + 1);
    return 0;
  });
  add("label", [&](const std::string& v) {
    auto eq = v.find('=');
    if (eq == std::string::npos || eq == 0) return fail("--label takes KEY=VALUE", 2);
    o.labels[v.substr(0, eq)] = v.substr(eq + 1);
    return 0;
  });
  add("build-arg", [&](const std::string& v) {
    auto eq = v.find('=');
    if (eq == std::string::npos) {
      // buildx: "--build-arg K" takes K from the environment.
      if (const char* env = std::getenv(v.c_str())) o.build_args[v] = env;
    } else {
      o.build_args[v.substr(0, eq)] = v.substr(eq + 1);
    }
    return 0;
  });
  add("platform", [&](const std::string& v) {
    auto pl = ocib::oci::parse_list(v);
    if (!pl.ok()) return fail(pl.error().str(), 2);
    o.platforms.insert(o.platforms.end(), pl->begin(), pl->end());
    return 0;
  });
  add("output", [&](const std::string& v) {
    auto out = ocib::exporter::parse_output(v);
    if (!out.ok()) return fail(out.error().str(), 2);
    o.outputs.push_back(*out);
    return 0;
  });
  add("cache-to", [&](const std::string& v) {
    std::string s = v.find('=') == std::string::npos ? "type=registry,ref=" + v : v;  // buildx: a bare image ref
    auto c = ocib::parse_typed_spec(s, "--cache-to");
    if (!c.ok()) return fail(c.error().str(), 2);
    o.cache_to.push_back(*c);
    return 0;
  });
  add("cache-from", [&](const std::string& v) {
    std::string s = v.find('=') == std::string::npos ? "type=registry,ref=" + v : v;
    auto c = ocib::parse_typed_spec(s, "--cache-from");
    if (!c.ok()) return fail(c.error().str(), 2);
    o.cache_from.push_back(*c);
    return 0;
  });
  add("secret", [&](const std::string& v) { return parse_secret(v, o); });
  // buildx: default|ID[=SOCKET|KEY[,KEY]]; without a path the agent at $SSH_AUTH_SOCK.
  add("ssh", [&](const std::string& v) {
    if (auto st = ocib::control::add_ssh_spec(v, o); !st.ok()) return fail(st.error().message(), 2);
    return 0;
  });
  add("insecure-registry", [&](const std::string& v) { o.insecure_registries.push_back(v); return 0; });
  add("registry-mirror", [&](const std::string& v) {
    auto eq = v.find('=');
    if (eq == std::string::npos) return fail("--registry-mirror takes HOST=MIRROR", 2);
    o.registry_mirrors[v.substr(0, eq)].push_back(v.substr(eq + 1));
    return 0;
  });
  // buildx's --call=check: the lint instead of a build; warnings make the exit status 1.
  add("check", [&](const std::string& v) {
    if (v == "true") print = "lint", check = true;
    return 0;
  });
  add("call", [&](const std::string& v) {
    if (v == "check") print = "lint", check = true;
    return 0;
  });
  add("fix", [&](const std::string& v) { fix = v == "true"; return 0; });
  add("print", [&](const std::string& v) { print = v; return 0; });
  add("iidfile", [&](const std::string& v) {
    if (int rc = check_output_file("--iidfile", v, "iid.txt")) return rc;
    o.iidfile = v;
    return 0;
  });
  add("metadata-file", [&](const std::string& v) {
    if (int rc = check_output_file("--metadata-file", v, "metadata.json")) return rc;
    o.metadata_file = v;
    return 0;
  });
  add("timeline", [&](const std::string& v) {
    if (int rc = check_timeline_path(v)) return rc;
    o.timeline_file = v;
    return 0;
  });
  add("ulimit", [&](const std::string& v) { return parse_ulimit(v, o); });
  add("annotation", [&](const std::string& v) {
    auto an = ocib::exporter::parse_annotation(v);
    if (!an.ok()) return fail(an.error().str(), 2);
    o.annotations.push_back(*an);
    return 0;
  });
  // The isolation rung (OCIB_ISOLATION; `ocib info` shows the one chosen).
  add("isolation", [&](const std::string& v) { ::setenv("OCIB_ISOLATION", v.c_str(), 1); return 0; });
  add("add-host", [&](const std::string& v) { return parse_add_host(v, o); });
  add("shm-size", [&](const std::string& v) { return parse_shm_size(v, o); });
  add("attest", [&](const std::string& v) {
    if (auto a = ocib::exporter::parse_attest(v, o.attest); !a.ok()) return fail(a.error().str(), 2);
    if (v.find("type=provenance") != std::string::npos) provenance_given = true;
    return 0;
  });
  add("load", [&](const std::string& v) { load = v == "true"; return 0; });
  add("push", [&](const std::string& v) { push = v == "true"; return 0; });
  add("no-cache-filter", [&](const std::string& v) {
    for (auto& stage : ocib::split_commas(v)) o.no_cache_filter.push_back(std::move(stage));
    return 0;
  });
  add("network", [&](const std::string& v) {
    o.network = v == "none" ? ocib::sandbox::Network::kNone
                : v == "host" ? ocib::sandbox::Network::kHost
                              : ocib::sandbox::Network::kDefault;
    return 0;
  });
  if (int rc = apply_flags(p, h)) return rc;
  // Every spec and combination is checked before any work (before stdin is read or a git
  // context cloned): a typo fails here with exit 2, not after the build.
  if (auto c = ocib::cache::check_cache_specs(o.cache_to, o.cache_from); !c.ok()) return fail(c.error().str(), 2);
  if (auto e = ocib::control::source_date_epoch(o); !e.ok()) return fail(e.error().str(), 2);
  if (fix && print != "lint") return fail("--fix goes with --print=lint", 2);
  if (!o.timeline_file.empty() && !print.empty())
    return fail("--timeline draws a build's steps: it does not go with --print or --check", 2);
  // buildx: --load is -o type=docker (no dest: into the docker daemon, or podman).
  if (load) {
    auto out = ocib::exporter::parse_output("type=docker");
    if (!out.ok()) return fail(out.error().str(), 2);
    o.outputs.push_back(*out);
  }
  // Where a load goes is checked now, before any work.
  for (const auto& out : o.outputs)
    if (out.type == "docker" && out.get("dest").empty())
      if (auto t = ocib::exporter::load_target(); !t.ok()) return fail(t.error().str());
  // buildx: --push is -o type=registry for the -t names (an image output already there gets
  // push=true instead).
  if (push) {
    bool pushed = false;
    for (auto& out : o.outputs)
      if (out.type == "image" || out.type == "registry") {
        out.attrs["push"] = "true";
        if (!out.attrs.count("name") && !o.tags.empty()) out.attrs["name"] = ocib::join(o.tags, ",");
        pushed = true;
      }
    if (!pushed) {
      if (o.tags.empty()) return fail("--push needs a name to push to: -t REF (or -o type=image,name=REF)", 2);
      auto out = ocib::exporter::parse_output("type=image,push=true,\"name=" + ocib::join(o.tags, ",") + "\"");
      if (!out.ok()) return fail(out.error().str(), 2);
      o.outputs.push_back(*out);
    }
  }
  // buildx attaches a mode=min provenance attestation to what it pushes unless told otherwise
  // (--provenance=false, BUILDX_NO_DEFAULT_ATTESTATIONS).
  if (!provenance_given && !std::getenv("BUILDX_NO_DEFAULT_ATTESTATIONS"))
    for (const auto& out : o.outputs)
      if (out.type == "registry" || (out.type == "image" && out.get("push") == "true")) o.attest.provenance = true;
  o.context = p.args[0];
  // stdin: `-f -` (the Dockerfile) or `-` as the context (a tar archive, or a Dockerfile with
  // an empty context), as docker build / buildx. Not both.
  std::unique_ptr<std::string, void (*)(std::string*)> stdin_dir(nullptr, [](std::string* d) {
    (void)ocib::fs::remove_all(*d);
    delete d;
  });
  if (o.context == "-" || o.dockerfile == "-") {
    if (o.context == "-" && o.dockerfile == "-") return fail("-f - and the context - cannot both read stdin", 2);
    std::string data((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (o.dockerfile == "-") {
      o.dockerfile_text = std::move(data);
    } else {
      const char* tmp = std::getenv("TMPDIR");
      auto dir = ocib::fs::make_temp_dir(tmp && *tmp ? tmp : "/tmp", "ocib-context-");
      if (!dir.ok()) return fail(dir.error().str());
      stdin_dir.reset(new std::string(*dir));
      std::string text;
      if (auto s = ocib::control::stdin_context(data, *dir, &text); !s.ok()) return fail(s.error().str(), 2);
      o.context = *dir;
      if (!text.empty() || data.empty()) {
        if (!o.dockerfile.empty()) return fail("the context on stdin is a Dockerfile: -f cannot name another", 2);
        o.dockerfile = "-";
        o.dockerfile_text = std::move(text);
      }
    }
  }
  // A git repository as the context (buildx): checked out into a temp dir first; a relative
  // -f names a file in it, as BuildKit reads the Dockerfile from the remote context.
  if (ocib::control::is_git_url(o.context)) {
    const char* tmp = std::getenv("TMPDIR");
    auto dir = ocib::fs::make_temp_dir(tmp && *tmp ? tmp : "/tmp", "ocib-git-");
    if (!dir.ok()) return fail(dir.error().str());
    stdin_dir.reset(new std::string(*dir));
    auto ctx = ocib::control::git_context(o.context, *dir);
    if (!ctx.ok()) return fail(ctx.error().str(), ctx.error().code() == ocib::Errc::kInvalidArgument ? 2 : 1);
    o.context = *ctx;
    if (!o.dockerfile.empty() && o.dockerfile != "-" && o.dockerfile[0] != '/')
      o.dockerfile = ocib::fs::join(*ctx, o.dockerfile);
  }
  if (print == "plan") {
    o.plan_only = true;
    auto r = ocib::control::run(o);
    if (!r.ok()) return fail(r.error().str(), r.error().code() == ocib::Errc::kInvalidArgument ? 2 : 1);
    std::fputs(r->plan.c_str(), stdout);
    return 0;
  }
  if (!print.empty()) {
    auto out = ocib::control::print_plan(o, print);
    if (!out.ok()) return fail(out.error().str(), out.error().code() == ocib::Errc::kInvalidArgument ? 2 : 1);
    std::fputs(out->c_str(), stdout);
    if (check) {
      size_t n = static_cast<size_t>(std::count(out->begin(), out->end(), '\n'));
      if (n == 0) std::fputs("Check complete, no warnings found.\n", stdout);
      else std::printf("Check complete, %zu warning%s found!\n", n, n == 1 ? " has been" : "s have been");
      if (n && !fix) return 1;
    }
    if (fix) {
      // The lint's rewrite, written over the Dockerfile (atomically; comments and layout kept).
      if (o.dockerfile == "-") return fail("--fix cannot rewrite a Dockerfile read from stdin", 2);
      auto fixed = ocib::control::print_plan(o, "lint-fix");
      if (!fixed.ok()) return fail(fixed.error().str());
      if (fixed->empty()) return 0;
      std::string path = o.dockerfile.empty() ? ocib::fs::join(o.context, ocib::dockerfile::default_dockerfile(o.context))
                                              : o.dockerfile;
      if (auto w = ocib::fs::write_file_atomic(path, *fixed); !w.ok()) return fail(w.error().str());
      std::fprintf(stderr, "rewrote %s\n", path.c_str());
    }
    return 0;
  }
  ocib::cli::install_signal_handlers();
  if (::getuid() != 0 && !ocib::IdMapping::detect().needs_helpers && o.progress != "quiet" &&
      [] { auto iso = ocib::sandbox::proc_isolation(); return !iso.ok() || iso->namespaces; }())
    ocib::log::warn("no subordinate id range for this user (/etc/subuid, /etc/subgid) or no newuidmap: "
                    "RUN steps see only uid/gid 0, so steps that switch users (apt-get, chown) may fail");
  auto r = ocib::control::run(o);
  if (!r.ok()) {
    if (ocib::cli::interrupted())
      return fail("build interrupted: " + r.error().str(), ocib::cli::interrupted_exit_code());
    return fail(r.error().str());
  }
  // A signal during the export, which does not poll for one: the outputs are complete, but
  // the build was asked to stop and must not report success.
  if (ocib::cli::interrupted())
    return fail("build interrupted (its outputs were already written)", ocib::cli::interrupted_exit_code());
  bool stdout_taken = false;
  for (const auto& out : o.outputs)
    if (auto d = out.attrs.find("dest"); d != out.attrs.end() && d->second == "-") stdout_taken = true;
  // -q prints the digest, like `docker build -q`, unless an output streams to stdout.
  // As buildx: -q prints the image ID, the same value --iidfile holds.
  if (o.progress == "quiet" && !stdout_taken) std::printf("%s\n", r->image_id.c_str());
  return 0;
}

// `ocib bake`: buildx bake's flags onto bake::Options; the shared ones onto its `common`
// control::Options, which starts from the configuration file as a build does.
int cmd_bake(const Parsed& p) {
  ocib::bake::Options b;
  config_defaults(b.common);
  bool provenance_given = false;
  Handlers h = common_handlers(b.common, &provenance_given);
  h["file"] = [&](const std::string& v) { b.files.push_back(v); return 0; };
  h["set"] = [&](const std::string& v) {
    auto eq = v.find('=');
    auto dot = v.find('.');
    if (eq == std::string::npos || dot == std::string::npos || dot == 0 || dot > eq || dot + 1 == eq)
      return fail("--set \"" + v + "\": want TARGET.KEY=VALUE", 2);
    b.set.push_back(v);
    return 0;
  };
  h["print"] = [&](const std::string& v) { b.print = v == "true"; return 0; };
  h["list"] = [&](const std::string&) { b.list_targets = true; return 0; };
  h["push"] = [&](const std::string& v) { b.push = v == "true"; return 0; };
  h["load"] = [&](const std::string& v) { b.load = v == "true"; return 0; };
  h["check"] = [&](const std::string& v) { if (v == "true") b.check = true; return 0; };
  h["call"] = [&](const std::string& v) { b.check = v == "check"; return 0; };
  h["metadata-file"] = [&](const std::string& v) {
    if (int rc = check_output_file("--metadata-file", v, "metadata.json")) return rc;
    b.metadata_file = v;
    return 0;
  };
  h["timeline"] = [&](const std::string& v) {
    if (int rc = check_timeline_path(v)) return rc;
    b.timeline_file = v;
    return 0;
  };
  h["insecure-registry"] = [&](const std::string& v) { b.common.insecure_registries.push_back(v); return 0; };
  if (int rc = apply_flags(p, h)) return rc;
  if ((b.print ? 1 : 0) + (b.list_targets ? 1 : 0) + (b.check ? 1 : 0) > 1)
    return fail("--print, --list and --check do not go together", 2);
  b.targets = p.args;
  if (b.load)
    if (auto t = ocib::exporter::load_target(); !t.ok()) return fail(t.error().str());
  // Reading and resolving the files is all checking, so its errors are usage errors, found
  // before any work; then the run.
  b.provenance_given = provenance_given;
  auto loaded = ocib::bake::load(b);
  if (!loaded.ok()) return fail(loaded.error().str(), 2);
  if (!b.print && !b.list_targets && !b.check) ocib::cli::install_signal_handlers();
  std::string out;
  auto r = ocib::bake::execute(b, *loaded, &out);
  std::fputs(out.c_str(), stdout);
  if (!r.ok()) {
    // --check: the warnings are on stdout; their presence is the exit status.
    if (b.check && r.error().code() == ocib::Errc::kFailedStep) return 1;
    if (ocib::cli::interrupted())
      return fail("bake interrupted: " + r.error().str(), ocib::cli::interrupted_exit_code());
    return fail(r.error().str(), r.error().code() == ocib::Errc::kInvalidArgument ? 2 : 1);
  }
  if (ocib::cli::interrupted())
    return fail("bake interrupted (its outputs were already written)", ocib::cli::interrupted_exit_code());
  return 0;
}

int cmd_info(const Parsed&) {
  std::fflush(stdout);  // the isolation probe forks
  ocib::IdMapping ids = ocib::sandbox::id_mapping();
  struct utsname u;
  uname(&u);
  std::printf("version:    %s\n", OCIB_VERSION);
  std::printf("store:      %s\n", ocib::store::Store::default_root().c_str());
  std::string files;
  for (const auto& f : g_config.files) files += (files.empty() ? "" : ", ") + f;
  std::printf("config:     %s\n", files.empty() ? "none (see ocib(1) FILES)" : files.c_str());
  std::printf("kernel:     %s %s\n", u.sysname, u.release);
  std::printf("id mapping: %s\n", ids.description.c_str());
  std::fflush(stdout);  // choosing the snapshot driver runs probe steps (forks)
  auto drv = ocib::sandbox::snapshot_driver(ids);
  std::printf("snapshots:  %s\n", drv.ok() ? (drv->name + " (" + drv->reason + ")").c_str() : "unavailable");
  auto proc = ocib::sandbox::proc_isolation();
  std::printf("isolation:  %s\n", proc.ok() ? (proc->name + " (" + proc->reason + ")").c_str()
                                             : proc.error().str().c_str());
  if (proc.ok() && !proc->namespaces) {
    std::printf("seccomp:    none of ocib's (the container's own profile applies); no_new_privs\n");
    std::printf("caps:       this process's own (bounding set cut to Docker's default)\n");
  } else {
    std::printf("seccomp:    %s; no_new_privs\n", ocib::sandbox::seccomp_description().c_str());
    std::printf("caps:       Docker's default set for root in the step, none for other users\n");
  }
  {
    std::string why = ocib::sandbox::network_stack_unavailable();
    std::printf("network:    %s\n", why.empty() ? ("default: own namespace via " + ocib::sandbox::network_stack_path() +
                                                    " (host loopback disabled); none; host").c_str()
                                                 : ("default falls back to host: " + why + "; none; host").c_str());
  }
  std::fflush(stdout);  // the probe forks; an unflushed buffer would be printed twice
  auto st = ocib::sandbox::check_support(ids);
  const bool chroot = proc.ok() && !proc->namespaces;
  std::printf("sandbox:    %s\n", !st.ok() ? st.error().str().c_str()
                                   : chroot ? "ok (chroot isolation: proot in a copied root; no namespaces)"
                                            : "ok (user, mount, pid, ipc, uts, net namespaces; seccomp; caps)");
  return st.ok() ? 0 : 1;
}


ocib::Result<ocib::store::Store> open_store() {
  return ocib::store::Store::open(ocib::store::Store::default_root());
}

int cmd_import(const Parsed& p) {
  std::optional<ocib::oci::Platform> platform;
  if (auto v = p.last("platform")) {
    auto pl = ocib::oci::parse_list(*v);
    if (!pl.ok()) return fail("--platform: " + pl.error().message(), 2);
    if (pl->size() != 1) return fail("ocib import --platform takes one platform", 2);
    platform = pl->front();
  }
  auto st = open_store();
  if (!st.ok()) return fail(st.error().str());
  // Shared, as a build holds it: `ocib prune` waits instead of deleting the blobs stored here
  // before the tag names them.
  auto gc = ocib::store::gc_lock(*st, false);
  if (!gc.ok()) return fail(gc.error().str());
  auto d = ocib::images::import_image(*st, p.args[0], p.args[1], platform ? &*platform : nullptr);
  if (!d.ok()) return fail(d.error().str());
  std::printf("%s\n", d->c_str());
  return 0;
}

int cmd_images(const Parsed&) {
  auto st = open_store();
  if (!st.ok()) return fail(st.error().str());
  auto tags = st->list_tags();
  std::printf("%-40s %s\n", "NAME", "DIGEST");
  for (const auto& [name, digest] : tags) std::printf("%-40s %s\n", name.c_str(), digest.c_str());
  return 0;
}

std::string human(uint64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", v, units[u]);
  return buf;
}

int cmd_du(const Parsed&) {
  auto st = open_store();
  if (!st.ok()) return fail(st.error().str());
  auto u = ocib::store::disk_usage(*st);
  if (!u.ok()) return fail(u.error().str());
  std::printf("store:      %s\n", st->root().c_str());
  std::printf("blobs:      %llu (%s)\n", static_cast<unsigned long long>(u->blob_count), human(u->blob_bytes).c_str());
  std::printf("snapshots:  %llu (%s)\n", static_cast<unsigned long long>(u->snapshot_count), human(u->snapshot_bytes).c_str());
  std::printf("cache:      %llu entries\n", static_cast<unsigned long long>(u->cache_entries));
  std::printf("total:      %s\n", human(u->blob_bytes + u->snapshot_bytes).c_str());
  return 0;
}

// "24h", "90m", "3600s", "2d" -> seconds; -1 when malformed.
int64_t parse_duration(const std::string& s) {
  if (s.empty()) return -1;
  char unit = s.back();
  std::string num = (unit >= '0' && unit <= '9') ? s : s.substr(0, s.size() - 1);
  if (num.empty() || num.find_first_not_of("0123456789") != std::string::npos) return -1;
  int64_t v = std::atoll(num.c_str());
  switch (unit) {
    case 'd': return v * 86400;
    case 'h': return v * 3600;
    case 'm': return v * 60;
    default: return v;
  }
}

int cmd_prune(const Parsed& p) {
  ocib::store::PruneOptions po;
  po.all = p.last("all") == "true";
  // --force: accepted for buildx compatibility: ocib never prompts
  if (auto v = p.last("filter")) {
    if (v->rfind("until=", 0) != 0) return fail("unsupported filter \"" + *v + "\" (until=DURATION)", 2);
    po.older_than_seconds = parse_duration(v->substr(6));
    if (po.older_than_seconds < 0) return fail("bad duration in \"" + *v + "\"", 2);
  }
  auto st = open_store();
  if (!st.ok()) return fail(st.error().str());
  ocib::IdMapping ids = ocib::sandbox::id_mapping();
  auto r = ocib::store::prune(*st, po, [&](const std::string& path) { return ocib::sandbox::remove_tree(path, ids); });
  if (!r.ok()) return fail(r.error().str());
  std::printf("removed %llu cache entries, %llu snapshots, %llu blobs: %s reclaimed\n",
              static_cast<unsigned long long>(r->cache_entries), static_cast<unsigned long long>(r->snapshots),
              static_cast<unsigned long long>(r->blobs), human(r->bytes).c_str());
  return 0;
}

int cmd_store_check(const Parsed&) {
  auto st = open_store();
  if (!st.ok()) return fail(st.error().str());
  auto r = ocib::store::check(*st);
  if (!r.ok()) return fail(r.error().str());
  for (const auto& pr : r->problems) std::printf("problem: %s\n", pr.c_str());
  std::printf("checked %llu blobs, %llu snapshots, %llu cache entries, %llu images: %s\n",
              static_cast<unsigned long long>(r->blobs), static_cast<unsigned long long>(r->snapshots),
              static_cast<unsigned long long>(r->cache_entries), static_cast<unsigned long long>(r->images),
              r->problems.empty() ? "ok" : (std::to_string(r->problems.size()) + " problems").c_str());
  return r->problems.empty() ? 0 : 1;
}

// The registry options of pull, push and manifest: the configuration's, plus --insecure-registry.
ocib::registry::Options registry_options(const Parsed& p) {
  ocib::registry::Options ro;
  ro.insecure_hosts = g_config.insecure_registries;
  ro.mirrors = g_config.mirrors;
  for (const auto& h : p.all("insecure-registry")) ro.insecure_hosts.push_back(h);
  return ro;
}

int cmd_pull(const Parsed& p) {
  ocib::registry::Options ro = registry_options(p);
  auto ref = ocib::registry::Reference::parse(p.args[0]);
  if (!ref.ok()) return fail(ref.error().str(), 2);
  auto st = open_store();
  if (!st.ok()) return fail(st.error().str());
  auto gc = ocib::store::gc_lock(*st, false);  // as for import
  if (!gc.ok()) return fail(gc.error().str());
  ocib::registry::Client client(ro);
  auto d = ocib::images::pull_image(*st, client, *ref, ocib::oci::Platform::host());
  if (!d.ok()) return fail(d.error().str());
  std::printf("%s\n", d->c_str());
  return 0;
}

int cmd_push(const Parsed& p) {
  ocib::registry::Options ro = registry_options(p);
  auto ref = ocib::registry::Reference::parse(p.args.back());
  if (!ref.ok()) return fail(ref.error().str(), 2);
  auto st = open_store();
  if (!st.ok()) return fail(st.error().str());
  ocib::registry::Client client(ro);
  auto d = ocib::images::push_image(*st, client, p.args[0], *ref);
  if (!d.ok()) return fail(d.error().str());
  auto s = client.stats();
  std::fprintf(stderr, "pushed %s: %d uploaded, %d already there, %d mounted\n", ref->str().c_str(), s.uploaded,
               s.skipped, s.mounted);
  std::printf("%s\n", d->c_str());
  return 0;
}

int cmd_tag(const Parsed& p) {
  auto st = open_store();
  if (!st.ok()) return fail(st.error().str());
  // A prune between the lookup and the new tag would delete what the tag is about to name.
  auto gc = ocib::store::gc_lock(*st, false);
  if (!gc.ok()) return fail(gc.error().str());
  auto img = ocib::images::load_image(*st, p.args[0]);
  if (!img.ok()) return fail(img.error().str());
  auto t = st->tag(ocib::images::normalize_name(p.args[1]), img->manifest_digest);
  if (!t.ok()) return fail(t.error().str());
  return 0;
}

int cmd_rmi(const Parsed& p) {
  auto st = open_store();
  if (!st.ok()) return fail(st.error().str());
  int rc = 0;
  for (const auto& n : p.args) {
    auto r = st->untag(ocib::images::normalize_name(n));
    if (!r.ok()) rc = fail(r.error().str());
    else std::printf("untagged %s\n", ocib::images::normalize_name(n).c_str());
  }
  return rc;
}

int cmd_inspect(const Parsed& p) {
  auto st = open_store();
  if (!st.ok()) return fail(st.error().str());
  // A prune between the lookup and the reads would delete what is being read.
  auto gc = ocib::store::gc_lock(*st, false);
  if (!gc.ok()) return fail(gc.error().str());
  auto img = ocib::images::load_image(*st, p.args[0]);
  if (!img.ok()) return fail(img.error().str());
  auto manifest = ocib::fs::read_file(st->blob_path(img->manifest_digest));
  if (!manifest.ok()) return fail(manifest.error().str());
  nlohmann::json out = {{"Name", p.args[0]},
                        {"Digest", img->manifest_digest},
                        {"Manifest", nlohmann::json::parse(*manifest, nullptr, false)},
                        {"Config", img->config.to_json()}};
  std::printf("%s\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  return 0;
}

// Docker's config file: $DOCKER_CONFIG/config.json or ~/.docker/config.json.
std::string docker_config_path() {
  if (const char* d = std::getenv("DOCKER_CONFIG"); d && *d) return ocib::fs::join(d, "config.json");
  const char* home = std::getenv("HOME");
  return ocib::fs::join(home && *home ? home : "/", ".docker/config.json");
}

int cmd_login(const Parsed& p) {
  std::string user = p.last("username").value_or(""), password = p.last("password").value_or("");
  const std::string& host = p.args[0];
  bool password_stdin = p.last("password-stdin") == "true";
  ocib::registry::Options ro;
  ro.insecure_hosts = p.all("insecure-registry");
  if (user.empty()) return fail("usage: ocib login -u USER [--password-stdin] REGISTRY", 2);
  if (password_stdin) {
    std::getline(std::cin, password);
    while (!password.empty() && (password.back() == '\n' || password.back() == '\r')) password.pop_back();
  }
  if (password.empty()) return fail("no password given (use --password-stdin)", 2);
  std::string path = docker_config_path();
  nlohmann::json cfg = nlohmann::json::object();
  if (auto data = ocib::fs::read_file(path); data.ok()) {
    cfg = nlohmann::json::parse(*data, nullptr, false);
    if (cfg.is_discarded() || !cfg.is_object()) return fail(path + " is not valid JSON; not touching it");
    if (auto au = cfg.find("auths"); au != cfg.end() && !au->is_object())
      return fail(path + ": \"auths\" is not an object; not touching it");
    if (auto au = cfg.find("auths"); au != cfg.end() && au->contains(host) && !(*au)[host].is_object())
      return fail(path + ": \"auths\".\"" + host + "\" is not an object; not touching it");
  }
  nlohmann::json old = cfg;
  cfg["auths"][host]["auth"] = ocib::registry::base64_encode(user + ":" + password);
  auto mk = ocib::fs::mkdirs(ocib::fs::dirname(path), 0700);
  if (!mk.ok()) return fail(mk.error().str());
  if (auto w = ocib::fs::write_file_atomic(path, cfg.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", 0600); !w.ok()) return fail(w.error().str());
  // Verify by resolving a repository that cannot exist: 401/403 means the credentials were
  // refused, anything else (404 included) means the registry accepted them.
  ocib::registry::Client client(ro);
  auto probe = ocib::registry::Reference::parse(host + "/ocib-login-check/" +
                                                ocib::Sha256::hex(user).substr(0, 12) + ":x");
  if (probe.ok()) {
    auto r = client.resolve(*probe);
    if (!r.ok() && r.error().message().find("auth") != std::string::npos) {
      (void)ocib::fs::write_file_atomic(path, old.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", 0600);
      return fail("login to " + host + " failed: " + r.error().message());
    }
  }
  std::printf("Login Succeeded (credentials stored in %s)\n", path.c_str());
  return 0;
}
int cmd_logout(const Parsed& p) {
  const std::string& host = p.args[0];
  std::string path = docker_config_path();
  auto data = ocib::fs::read_file(path);
  if (!data.ok()) return fail("not logged in to " + host);
  auto cfg = nlohmann::json::parse(*data, nullptr, false);
  if (cfg.is_discarded() || !cfg.contains("auths") || !cfg["auths"].contains(host)) return fail("not logged in to " + host);
  cfg["auths"].erase(host);
  if (auto w = ocib::fs::write_file_atomic(path, cfg.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", 0600); !w.ok()) return fail(w.error().str());
  std::printf("Removed login credentials for %s\n", host.c_str());
  return 0;
}

int cmd_version(const Parsed&) {
  std::printf("ocib %s\n", OCIB_VERSION);
  return 0;
}

int cmd_timeline(const Parsed& p) {
  // "-": the metadata from stdin (ocib build --metadata-file /dev/stdout | ocib timeline -).
  const std::string& path = p.args[0];
  auto text = path == "-" ? ocib::Result<std::string>(std::string(std::istreambuf_iterator<char>(std::cin),
                                                                     std::istreambuf_iterator<char>()))
                          : ocib::fs::read_file(path);
  if (!text.ok()) return fail("ocib timeline: " + text.error().str(), 2);
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded()) return fail("ocib timeline: " + path + ": not JSON (the file --metadata-file writes)", 2);
  auto page = ocib::exporter::timeline_html(j);
  if (!page.ok()) return fail("ocib timeline: " + path + ": " + page.error().str(), 2);
  if (std::fwrite(page->data(), 1, page->size(), stdout) != page->size() || std::fflush(stdout) != 0)
    return fail("ocib timeline: writing the page: " + std::string(std::strerror(errno)));
  return 0;
}

// `ocib manifest create|inspect`: buildx imagetools' multi-runner half. Each runner pushes its
// platform by digest; one job merges them into an index under the tags.
int parse_refs(const std::vector<std::string>& in, std::vector<ocib::registry::Reference>* out) {
  for (const auto& s : in) {
    auto r = ocib::registry::Reference::parse(s);
    if (!r.ok()) return fail(r.error().str(), 2);
    out->push_back(*r);
  }
  return 0;
}

int cmd_manifest_inspect(const Parsed& p) {
  ocib::registry::Client client(registry_options(p));
  std::vector<ocib::registry::Reference> refs;
  if (int rc = parse_refs(p.args, &refs)) return rc;
  auto m = client.get_manifest(refs[0]);
  if (!m.ok()) return fail(m.error().str());
  if (p.last("raw") == "true") {
    std::fwrite(m->bytes.data(), 1, m->bytes.size(), stdout);
    return 0;
  }
  auto j = ocib::oci::parse_json(m->bytes, refs[0].str());
  if (!j.ok()) return fail(j.error().str());
  std::printf("Name:      %s\nMediaType: %s\nDigest:    %s\n", refs[0].str().c_str(), m->media_type.c_str(),
              m->digest.c_str());
  if (auto ms = j->find("manifests"); ms != j->end() && ms->is_array()) {
    std::printf("\nManifests:\n");
    for (const auto& e : *ms) {
      if (!e.is_object()) continue;
      std::string plat;
      if (auto pl = e.find("platform"); pl != e.end() && pl->is_object())
        plat = pl->value("os", "") + "/" + pl->value("architecture", "") +
               (pl->value("variant", "").empty() ? "" : "/" + pl->value("variant", ""));
      std::string kind;
      if (auto an = e.find("annotations"); an != e.end() && an->is_object())
        kind = an->value("vnd.docker.reference.type", "");
      std::printf("  Name:      %s@%s\n  MediaType: %s\n  Platform:  %s\n\n", refs[0].repository.c_str(),
                  e.value("digest", "").c_str(), e.value("mediaType", "").c_str(),
                  kind.empty() ? plat.c_str() : ("unknown/unknown (" + kind + ")").c_str());
    }
  }
  return 0;
}

int cmd_manifest_create(const Parsed& p) {
  auto tags = p.all("tag");
  if (tags.empty()) return fail("ocib manifest create needs at least one -t REF", 2);
  std::vector<ocib::registry::Reference> dests, sources;
  if (int rc = parse_refs(tags, &dests)) return rc;
  if (int rc = parse_refs(p.args, &sources)) return rc;
  ocib::registry::Client client(registry_options(p));
  std::string digest;
  for (const auto& d : dests) {
    auto r = ocib::images::create_index(client, d, sources);
    if (!r.ok()) return fail(r.error().wrap(d.str()).str());
    digest = *r;
    std::fprintf(stderr, "pushed %s@%s\n", d.str().c_str(), digest.c_str());
  }
  std::printf("%s\n", digest.c_str());
  return 0;
}

// `ocib __generate bash|zsh|fish|man PAGE.scd|readme README.md` (hidden): the generated files,
// to standard output. scripts/generate-cli.sh writes them into the tree.
int cmd_generate(const Parsed& p) {
  const std::string& what = p.args[0];
  std::string out;
  if (what == "bash" && p.args.size() == 1) out = ocib::cli::bash_completion();
  else if (what == "zsh" && p.args.size() == 1) out = ocib::cli::zsh_completion();
  else if (what == "fish" && p.args.size() == 1) out = ocib::cli::fish_completion();
  else if (what == "man" && p.args.size() == 2) {
    auto page = ocib::fs::read_file(p.args[1]);
    if (!page.ok()) return fail(page.error().str(), 2);
    std::string base = ocib::fs::basename(p.args[1]);  // ocib-manifest.1.scd -> "manifest"
    if (base.rfind("ocib-", 0) != 0 || base.size() < 12) return fail(p.args[1] + ": not an ocib-CMD.1.scd page", 2);
    const ocib::cli::Command* c = ocib::cli::find_command(base.substr(5, base.size() - 5 - 6));
    if (!c) return fail(p.args[1] + ": no such command in the table", 2);
    out = ocib::cli::update_man_page(*page, *c);
  } else if (what == "readme" && p.args.size() == 2) {
    auto text = ocib::fs::read_file(p.args[1]);
    if (!text.ok()) return fail(text.error().str(), 2);
    auto problems = ocib::cli::check_readme(*text);
    for (const auto& pr : problems) ocib::log::error(pr);
    return problems.empty() ? 0 : 1;
  } else {
    return fail("usage: ocib __generate bash|zsh|fish|man PAGE.scd|readme README.md", 2);
  }
  std::fputs(out.c_str(), stdout);
  return 0;
}

struct Entry {
  const char* name;
  int (*fn)(const Parsed&);
};

constexpr Entry kCommands[] = {
    {"build", cmd_build},     {"bake", cmd_bake},
    {"du", cmd_du},           {"images", cmd_images},
    {"import", cmd_import},   {"info", cmd_info},
    {"inspect", cmd_inspect}, {"login", cmd_login},
    {"logout", cmd_logout},   {"manifest create", cmd_manifest_create},
    {"manifest inspect", cmd_manifest_inspect},
    {"prune", cmd_prune},     {"pull", cmd_pull},
    {"push", cmd_push},       {"rmi", cmd_rmi},
    {"store check", cmd_store_check},
    {"tag", cmd_tag},         {"timeline", cmd_timeline},
    {"version", cmd_version}, {"__generate", cmd_generate},
};

// Top-level command names, for "did you mean".
std::vector<std::string> command_names() {
  std::vector<std::string> out;
  for (const auto& c : ocib::cli::commands())
    if (!c.hidden && c.name.find(' ') == std::string::npos) out.push_back(c.name);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::fputs(ocib::cli::main_help().c_str(), stderr);
    return 2;
  }
  const std::string& first = args[0];
  if (first == "--help" || first == "-h" || first == "help") {
    // `ocib help build` is `ocib build --help`.
    if (first == "help" && args.size() > 1) {
      std::string name = args[1] + (args.size() > 2 ? " " + args[2] : "");
      const ocib::cli::Command* c = ocib::cli::find_command(name);
      if (!c) c = ocib::cli::find_command(args[1]);
      if (!c || c->hidden)
        return fail("unknown command \"" + args[1] + "\"" + ocib::did_you_mean(args[1], command_names()) +
                        " (see 'ocib --help')",
                    2);
      std::fputs(ocib::cli::help(*c).c_str(), stdout);
      return 0;
    }
    std::fputs(ocib::cli::main_help().c_str(), stdout);
    return 0;
  }
  if (first == "--version") return cmd_version({});
  if (!first.empty() && first[0] == '-')
    return fail("unknown flag " + first + ocib::did_you_mean(first, {"--help", "--version"}) + " (see 'ocib --help')", 2);
  if (auto cfg = ocib::cli::load_config(); cfg.ok()) {
    g_config = std::move(*cfg);
    ocib::cli::apply_config_env(g_config);
  } else {
    return fail(cfg.error().str());
  }
  const ocib::cli::Command* cmd = ocib::cli::find_command(first);
  if (!cmd || first.find(' ') != std::string::npos)
    return fail("unknown command \"" + first + "\"" + ocib::did_you_mean(first, command_names()) + " (see 'ocib --help')", 2);
  std::vector<std::string> rest(args.begin() + 1, args.end());
  // A command with subcommands (manifest create, store check): the first word names it.
  if (!cmd->subcommands.empty() && !rest.empty() && !rest[0].empty() && rest[0][0] != '-') {
    const auto& subs = cmd->subcommands;
    if (std::find(subs.begin(), subs.end(), rest[0]) == subs.end())
      return fail("unknown " + cmd->name + " command \"" + rest[0] + "\"" + ocib::did_you_mean(rest[0], subs) +
                      " (see 'ocib " + cmd->name + " --help')",
                  2);
    cmd = ocib::cli::find_command(cmd->name + " " + rest[0]);
    rest.erase(rest.begin());
  }
  std::string error;
  auto parsed = ocib::cli::parse(*cmd, rest, &error);
  if (!parsed) return fail(error, 2);
  if (parsed->help) {
    std::fputs(ocib::cli::help(*cmd).c_str(), stdout);
    return 0;
  }
  for (const auto& e : kCommands)
    if (cmd->name == e.name) return e.fn(*parsed);
  return fail("internal error: command \"" + cmd->name + "\" has no implementation", 1);
}
