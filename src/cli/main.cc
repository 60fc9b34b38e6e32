// ocib: command table and dispatch. Each verb parses its own options and calls a library.

#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "bake/bake.h"
#include "base/idmap.h"
#include "base/log.h"
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
#include "sandbox/sandbox.h"
#include "sandbox/seccomp.h"
#include "store/maintenance.h"
#include "store/store.h"

namespace {

using Args = std::vector<std::string>;

// The configuration files' settings; command-line flags override them.
ocib::cli::Config g_config;

constexpr const char* kBuildHelp = R"(Usage: ocib build [OPTIONS] CONTEXT

Build an image from a Dockerfile, without a daemon and without root. CONTEXT is a
directory, or - to read it from stdin (a tar archive, or a Dockerfile with no context).

Options:
  -f, --file FILE          Dockerfile (default: CONTEXT/Dockerfile; - reads stdin)
  -t, --tag NAME[:TAG]     name the image (repeatable)
      --target STAGE       build this stage (default: the last)
      --label K=V          set a label on the image (repeatable)
      --build-context NAME=DIR|docker-image://REF|oci-layout://DIR[:TAG]
                           an extra context for FROM NAME / COPY --from=NAME /
                           RUN --mount=from=NAME; it replaces a stage of that name
      --build-arg K=V      set a build-time variable (repeatable)
      --platform LIST      build for these platforms (linux/amd64,linux/arm64,...); several
                           make an image index. RUN for a foreign architecture needs qemu-user
                           registered in binfmt_misc (F flag) (default: the host's)
  -o, --output SPEC        type=image,name=REF[,push=true] | type=registry,name=REF |
                           type=oci,dest=FILE.tar | type=oci-layout,dest=DIR |
                           type=docker,dest=FILE.tar | type=local,dest=DIR | type=tar,dest=FILE
                           (repeatable; dest=- writes tar outputs to stdout); options:
                           compression=gzip|zstd|uncompressed, compression-level=N
      --annotation A       [TYPE[,TYPE][[PLATFORM]]:]KEY=VALUE on the manifest (default),
                           index, manifest-descriptor or index-descriptor (repeatable)
      --ulimit NAME=S[:H]  resource limit for RUN steps, e.g. nofile=1024:2048 (repeatable)
      --isolation MODE     auto | full | procfs-less | chroot (= OCIB_ISOLATION; see ocib info)
      --add-host HOST:IP   an /etc/hosts entry for every RUN (repeatable)
      --shm-size SIZE      size of /dev/shm in RUN steps (default 64m)
      --check              lint instead of building (buildx --call=check): exit 1 on warnings
      --push               push the image to the -t names (= -o type=registry)
      --iidfile FILE       write the image ID (config digest; index digest for several
                           platforms); -q prints the same ID
      --print WHAT         do not build; print the stage graph (graph: DOT, graph-json),
                           lint warnings (lint: stages serialised for no reason; with
                           --fix the Dockerfile is rewritten to the parallel shape) or the
                           planned steps with their cache keys (plan: JSON; nothing runs)
      --secret SPEC        id=ID,src=FILE | id=ID,env=VAR: for RUN --mount=type=secret
      --provenance V       true|false|mode=min|max: a SLSA provenance attestation (default for --push: mode=min)
      --sbom V             true|false: an SPDX SBOM attestation of the image's packages (dpkg, apk)
      --attest SPEC        type=provenance[,mode=max] | type=sbom
      --load               load the image into the docker daemon (DOCKER_HOST or /var/run/docker.sock), else podman
      --ssh default|ID[=SOCKET|KEY[,KEY]]  an ssh agent (or key files) for RUN --mount=type=ssh
      --pull[=POLICY]      base images from registries: always | missing | never
                           (default: re-resolve the tag with a HEAD, pull if it moved)
      --insecure-registry HOST[:PORT]
                           allow plain HTTP / unverified TLS for this registry only
      --registry-mirror HOST=MIRROR
                           try MIRROR (host[:port]) first for images of HOST (repeatable)
      --progress MODE      auto (default: tty on a terminal, else plain) | tty | plain |
                           rawjson | quiet
      --metadata-file FILE write the image digest and per-step timings as JSON
      --timeline FILE      write an HTML page of the build's steps over time (lanes of
                           concurrent steps, cached steps, the critical path); self-contained
  -j, --jobs N             run at most N steps at once (default: max(4, CPUs))
      --no-cache           do not use the build cache
      --no-cache-filter STAGE[,STAGE]
                           run the steps of these stages again; others may be cached
                           (repeatable)
      --cache-to SPEC      export the build cache: type=local,dest=DIR |
                           type=registry,ref=REF (an OCI artifact in a registry), with
                           mode=min (the image's layers, default) or mode=max (every step);
                           or type=inline (in the image config; read back from the image)
      --cache-from SPEC    import a build cache: type=local,src=DIR | type=registry,ref=REF
                           (a cache pushed with type=registry, or an image built with
                           type=inline); a bare REF means type=registry,ref=REF (repeatable)
      --network MODE       network of RUN steps: default (each step its own network
                           namespace with outbound access through slirp4netns; the
                           host's loopback unreachable) | none (only lo) | host
      --allow ENTITLEMENT  security.insecure: let RUN --security=insecure run with every
                           capability of its user namespace and no seccomp filter;
                           network.host: let RUN use the host's network (--network=host)
  -q, --quiet              same as --progress=quiet

Examples:
  ocib build -t app:1 -o type=oci,dest=app.tar .
  ocib build --target test --build-arg VERSION=2 -o type=oci-layout,dest=out/ .
)";

constexpr const char* kMainHelp = R"(Usage: ocib COMMAND [ARGS]

A daemonless, rootless OCI image builder.

Commands:
  bake       Build several targets from a bake file (HCL, JSON, compose) at once
  build      Build an image from a Dockerfile
  images     List the images in the local store
  import     Import a rootfs tar or OCI archive as an image
  du         Show the disk usage of the store
  info       Show the store, id mapping and sandbox support
  inspect    Print a stored image's manifest and config
  login      Store registry credentials (Docker config file)
  logout     Remove stored registry credentials
  manifest   Merge pushed images into one index, or inspect one (create, inspect)
  prune      Remove build cache and unreferenced data
  pull       Pull an image from a registry into the store
  push       Push a stored image to a registry
  rmi        Remove image names from the store
  store      Verify the store (ocib store check)
  tag        Give a stored image another name
  timeline   Draw a build's --metadata-file as an HTML timeline page
  version    Show the version

Run 'ocib COMMAND --help' for more.
)";

int fail(const std::string& msg, int code = 1) {
  ocib::log::error(msg);
  return code;
}

// Takes "--name=value" or "--name value" / "-n value" forms.
bool take_value(const Args& a, size_t& i, const std::string& long_name, const std::string& short_name,
                std::string* out) {
  const std::string& s = a[i];
  if (s == long_name || (!short_name.empty() && s == short_name)) {
    if (i + 1 >= a.size()) return false;
    *out = a[++i];
    return true;
  }
  if (s.rfind(long_name + "=", 0) == 0) {
    *out = s.substr(long_name.size() + 1);
    return true;
  }
  // getopt's attached form: -j4, -tapp:1.
  if (short_name.size() == 2 && s.size() > 2 && s.rfind(short_name, 0) == 0) {
    *out = s.substr(2);
    return true;
  }
  return false;
}

int cmd_build(const Args& a) {
  ocib::control::Options o;
  bool push = false;  // --push
  bool load = false;  // --load
  bool provenance_given = false;  // --provenance / --attest type=provenance
  bool fix = false;   // --fix (with --print=lint)
  bool check = false;  // --check / --call=check
  if (g_config.jobs) o.jobs = *g_config.jobs;
  if (g_config.progress) o.progress = *g_config.progress;
  if (g_config.network == "none") o.network = ocib::sandbox::Network::kNone;
  if (g_config.network == "host") o.network = ocib::sandbox::Network::kHost;
  if (g_config.network == "default") o.network = ocib::sandbox::Network::kDefault;
  o.insecure_registries = g_config.insecure_registries;
  o.registry_mirrors = g_config.mirrors;
  std::vector<std::string> positional;
  std::string print;
  for (size_t i = 0; i < a.size(); ++i) {
    std::string v;
    const std::string& s = a[i];
    if (s == "-h" || s == "--help") {
      std::fputs(kBuildHelp, stdout);
      return 0;
    }
    bool needs_value = s == "-f" || s == "--file" || s == "-t" || s == "--tag" || s == "--target" ||
                       s == "--build-arg" || s == "--label" || s == "--allow" || s == "--build-context" || s == "-o" || s == "--output" || s == "--progress" ||
                       s == "--metadata-file" || s == "-j" || s == "--jobs" || s == "--network" ||
                       s == "--cache-to" || s == "--cache-from" || s == "--no-cache-filter" || s == "--iidfile" || s == "--secret" || s == "--insecure-registry" || s == "--print" || s == "--registry-mirror" || s == "--platform" || s == "--add-host" || s == "--shm-size" || s == "--isolation" || s == "--annotation" || s == "--ulimit" || s == "--ssh" || s == "--timeline" || s == "--provenance" || s == "--sbom" || s == "--attest";
    if (needs_value && i + 1 >= a.size()) return fail("flag " + s + " needs a value", 2);
    if (take_value(a, i, "--file", "-f", &v)) {
      o.dockerfile = v;
    } else if (take_value(a, i, "--build-context", "", &v)) {
      auto eq = v.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == v.size())
        return fail("--build-context takes NAME=DIR|docker-image://REF|oci-layout://DIR[:TAG]", 2);
      o.build_contexts[v.substr(0, eq)] = v.substr(eq + 1);
    } else if (take_value(a, i, "--allow", "", &v)) {
      auto entitlements = ocib::split_commas(v);
      if (entitlements.empty()) return fail("--allow needs an entitlement (security.insecure, network.host)", 2);
      for (const auto& e : entitlements) {
        if (e != "security.insecure" && e != "network.host")
          return fail("--allow: unknown entitlement \"" + e + "\" (security.insecure, network.host)", 2);
        o.allow.push_back(e);
      }
    } else if (take_value(a, i, "--label", "", &v)) {
      auto eq = v.find('=');
      if (eq == std::string::npos || eq == 0) return fail("--label takes KEY=VALUE", 2);
      o.labels[v.substr(0, eq)] = v.substr(eq + 1);
    } else if (take_value(a, i, "--tag", "-t", &v)) {
      o.tags.push_back(v);
    } else if (take_value(a, i, "--target", "", &v)) {
      o.target = v;
    } else if (take_value(a, i, "--build-arg", "", &v)) {
      auto eq = v.find('=');
      if (eq == std::string::npos) {
        // buildx: "--build-arg K" takes K from the environment.
        if (const char* env = std::getenv(v.c_str())) o.build_args[v] = env;
      } else {
        o.build_args[v.substr(0, eq)] = v.substr(eq + 1);
      }
    } else if (take_value(a, i, "--platform", "", &v)) {
      auto p = ocib::oci::parse_list(v);
      if (!p.ok()) return fail(p.error().str(), 2);
      o.platforms.insert(o.platforms.end(), p->begin(), p->end());
    } else if (take_value(a, i, "--output", "-o", &v)) {
      auto out = ocib::exporter::parse_output(v);
      if (!out.ok()) return fail(out.error().str(), 2);
      o.outputs.push_back(*out);
    } else if (take_value(a, i, "--cache-to", "", &v)) {
      if (v.find('=') == std::string::npos) v = "type=registry,ref=" + v;  // buildx: a bare image ref
      auto c = ocib::parse_typed_spec(v, "--cache-to");
      if (!c.ok()) return fail(c.error().str(), 2);
      o.cache_to.push_back(*c);
    } else if (take_value(a, i, "--cache-from", "", &v)) {
      if (v.find('=') == std::string::npos) v = "type=registry,ref=" + v;
      auto c = ocib::parse_typed_spec(v, "--cache-from");
      if (!c.ok()) return fail(c.error().str(), 2);
      o.cache_from.push_back(*c);
    } else if (take_value(a, i, "--progress", "", &v)) {
      if (v == "auto" || v == "tty" || v == "plain" || v == "rawjson" || v == "quiet") o.progress = v;
      else return fail("unknown --progress mode \"" + v + "\" (auto, tty, plain, rawjson, quiet)", 2);
    } else if (s == "-q" || s == "--quiet") {
      o.progress = "quiet";
    } else if (take_value(a, i, "--secret", "", &v)) {
      // buildx: id=ID,src=FILE | id=ID,env=VAR | id=ID (env var ID or ./ID)
      ocib::control::Options::Secret sec;
      std::string id;
      size_t p = 0;
      while (p <= v.size()) {
        size_t q = v.find(',', p);
        if (q == std::string::npos) q = v.size();
        std::string part = v.substr(p, q - p);
        p = q + 1;
        auto eq = part.find('=');
        std::string k = part.substr(0, eq), val = eq == std::string::npos ? "" : part.substr(eq + 1);
        if (k == "id") id = val;
        else if (k == "src" || k == "source") sec.file = val;
        else if (k == "env") sec.env = val;
        else if (k == "type") {
        } else return fail("invalid --secret \"" + k + "\" (id=, src=, env=)", 2);
      }
      if (id.empty()) return fail("--secret needs id=", 2);
      if (sec.file.empty() && sec.env.empty()) sec.env = id;
      o.secrets[id] = sec;
    } else if (take_value(a, i, "--ssh", "", &v)) {
      // buildx: default|ID[=SOCKET|KEY[,KEY]]; without a path the agent at $SSH_AUTH_SOCK.
      if (auto st = ocib::control::add_ssh_spec(v, o); !st.ok()) return fail(st.error().message(), 2);
    } else if (s == "--pull") {
      o.pull = "always";
    } else if (s.rfind("--pull=", 0) == 0) {
      v = s.substr(7);
      if (v == "true" || v == "always") o.pull = "always";
      else if (v == "false" || v == "missing") o.pull = "missing";
      else if (v == "never") o.pull = "never";
      else return fail("unknown --pull value \"" + v + "\" (always, missing, never)", 2);
    } else if (take_value(a, i, "--insecure-registry", "", &v)) {
      o.insecure_registries.push_back(v);
    } else if (take_value(a, i, "--registry-mirror", "", &v)) {
      auto eq = v.find('=');
      if (eq == std::string::npos) return fail("--registry-mirror takes HOST=MIRROR", 2);
      o.registry_mirrors[v.substr(0, eq)].push_back(v.substr(eq + 1));
    } else if (s == "--check" || s == "--call=check" || (s == "--call" && i + 1 < a.size() && a[i + 1] == "check")) {
      // buildx's --call=check: the lint instead of a build; warnings make the exit status 1.
      if (s == "--call") ++i;
      print = "lint";
      check = true;
    } else if (s == "--call" || s.rfind("--call=", 0) == 0) {
      std::string m = s == "--call" ? (i + 1 < a.size() ? a[i + 1] : "") : s.substr(7);
      if (m != "build") return fail("--call " + m + ": only build (the default) and check are supported", 2);
      if (s == "--call") ++i;
    } else if (s == "--fix") {
      fix = true;
    } else if (take_value(a, i, "--print", "", &v)) {
      print = v;
    } else if (take_value(a, i, "--iidfile", "", &v)) {
      o.iidfile = v;
    } else if (take_value(a, i, "--metadata-file", "", &v)) {
      o.metadata_file = v;
    } else if (take_value(a, i, "--timeline", "", &v)) {
      // Checked now, so a typo in the path fails before the build rather than after it.
      if (v.empty() || v == "-") return fail("--timeline needs a file name (FILE.html)", 2);
      if (ocib::fs::is_dir(v)) return fail("--timeline " + v + ": is a directory (give a file name, e.g. " +
                                           ocib::fs::join(v, "timeline.html") + ")", 2);
      if (std::string dir = ocib::fs::dirname(v); !ocib::fs::is_dir(dir))
        return fail("--timeline " + v + ": directory " + dir + " does not exist", 2);
      o.timeline_file = v;
    } else if (take_value(a, i, "--jobs", "-j", &v)) {
      o.jobs = std::atoi(v.c_str());
      if (o.jobs < 1) return fail("--jobs needs a positive number", 2);
    } else if (take_value(a, i, "--ulimit", "", &v)) {
      // Docker's NAME=SOFT[:HARD] (-1: unlimited), e.g. nofile=1024:2048.
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
    } else if (take_value(a, i, "--annotation", "", &v)) {
      auto an = ocib::exporter::parse_annotation(v);
      if (!an.ok()) return fail(an.error().str(), 2);
      o.annotations.push_back(*an);
    } else if (take_value(a, i, "--isolation", "", &v)) {
      // The isolation rung (OCIB_ISOLATION; `ocib info` shows the one chosen).
      if (v != "auto" && v != "full" && v != "procfs-less" && v != "chroot")
        return fail("unknown --isolation \"" + v + "\" (auto, full, procfs-less, chroot)" +
                        ocib::did_you_mean(v, {"auto", "full", "procfs-less", "chroot"}),
                    2);
      ::setenv("OCIB_ISOLATION", v.c_str(), 1);
    } else if (take_value(a, i, "--add-host", "", &v)) {
      // buildx: HOST:IP (or HOST=IP); the address is checked now.
      auto sep = v.find('=') != std::string::npos ? v.find('=') : v.find(':');
      std::string host = sep == std::string::npos ? "" : v.substr(0, sep), ip = sep == std::string::npos ? "" : v.substr(sep + 1);
      if (ip.size() > 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
      unsigned char buf[16];
      if (host.empty() || (inet_pton(AF_INET, ip.c_str(), buf) != 1 && inet_pton(AF_INET6, ip.c_str(), buf) != 1))
        return fail("invalid --add-host \"" + v + "\" (HOST:IP, e.g. db.local:10.0.0.5)", 2);
      o.extra_hosts.push_back({host, ip});
    } else if (take_value(a, i, "--shm-size", "", &v)) {
      // Docker's RAMInBytes: a number with an optional b, k, m or g (binary units).
      char* end = nullptr;
      errno = 0;
      double n = std::strtod(v.c_str(), &end);
      std::string unit = ocib::ascii_lower(end ? std::string(end) : "");
      if (!unit.empty() && unit.back() == 'b' && unit.size() == 2) unit.pop_back();
      double mult = unit.empty() || unit == "b" ? 1 : unit == "k" ? 1024.0 : unit == "m" ? 1048576.0 : unit == "g" ? 1073741824.0 : -1;
      if (v.empty() || errno || mult < 0 || n <= 0 || end == v.c_str())
        return fail("invalid --shm-size \"" + v + "\" (bytes, or with a unit: 128m, 1g)", 2);
      o.shm_size = static_cast<uint64_t>(n * mult);
    } else if (take_value(a, i, "--provenance", "", &v)) {
      if (auto p = ocib::exporter::parse_provenance(v, o.attest); !p.ok()) return fail(p.error().str(), 2);
      provenance_given = true;
    } else if (take_value(a, i, "--sbom", "", &v)) {
      if (auto p = ocib::exporter::parse_sbom(v, o.attest); !p.ok()) return fail(p.error().str(), 2);
    } else if (take_value(a, i, "--attest", "", &v)) {
      if (auto p = ocib::exporter::parse_attest(v, o.attest); !p.ok()) return fail(p.error().str(), 2);
      if (v.find("type=provenance") != std::string::npos) provenance_given = true;
    } else if (s == "--load" || s == "--load=true") {
      load = true;
    } else if (s == "--load=false") {
      load = false;
    } else if (s == "--push" || s == "--push=true") {
      push = true;
    } else if (s == "--push=false") {
      push = false;
    } else if (s == "--no-cache") {
      o.no_cache = true;
    } else if (take_value(a, i, "--no-cache-filter", "", &v)) {
      for (auto& stage : ocib::split_commas(v)) o.no_cache_filter.push_back(std::move(stage));
    } else if (take_value(a, i, "--network", "", &v)) {
      if (v == "none") o.network = ocib::sandbox::Network::kNone;
      else if (v == "host") o.network = ocib::sandbox::Network::kHost;
      else if (v == "default") o.network = ocib::sandbox::Network::kDefault;
      else return fail("unknown --network mode \"" + v + "\" (default, none, host)", 2);
    } else if (!s.empty() && s[0] == '-' && s != "-") {
      return fail("unknown flag " + s + " (see 'ocib build --help')", 2);
    } else {
      positional.push_back(s);
    }
  }
  if (positional.size() != 1) return fail("ocib build needs exactly one CONTEXT argument", 2);
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
  o.context = positional[0];
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
  // Every spec is checked before any work: a typo fails here with exit 2, not after the build.
  if (auto c = ocib::cache::check_cache_specs(o.cache_to, o.cache_from); !c.ok()) return fail(c.error().str(), 2);
  if (auto e = ocib::control::source_date_epoch(o); !e.ok()) return fail(e.error().str(), 2);
  if (print == "plan") {
    o.plan_only = true;
    auto r = ocib::control::run(o);
    if (!r.ok()) return fail(r.error().str(), r.error().code() == ocib::Errc::kInvalidArgument ? 2 : 1);
    std::fputs(r->plan.c_str(), stdout);
    return 0;
  }
  if (fix && print != "lint") return fail("--fix goes with --print=lint", 2);
  if (!o.timeline_file.empty() && !print.empty())
    return fail("--timeline draws a build's steps: it does not go with --print or --check", 2);
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

constexpr const char* kBakeHelp = R"(Usage: ocib bake [OPTIONS] [TARGET|GROUP...]

Build the targets of a bake file (docker buildx bake): docker-bake.hcl, docker-bake.json or
a compose file's build sections. All targets plan onto one store and run together: a step
two targets share runs once, -j bounds the whole run, one summary shows the critical path.
Without TARGET the group "default" is built. Without -f the files found here are read and
merged in buildx's order: compose.yaml, compose.yml, docker-compose.yml,
docker-compose.yaml, docker-bake.json, docker-bake.hcl, docker-bake.override.json,
docker-bake.override.hcl. Relative paths in a file are relative to its directory.

Options:
  -f, --file FILE          bake file (repeatable; merged in order)
      --set T.KEY=VALUE    override an attribute (T may be a pattern: *.platform=linux/arm64;
                           args.NAME=V, labels.NAME=V, tags+=V appends; repeatable)
      --print              print the resolved definition as JSON, build nothing
      --list=targets       list the targets and groups, build nothing
      --push               push every target to its tags
      --load               load every target into docker (or podman)
      --no-cache           run every step again
      --pull               re-pull every base image
      --progress MODE      auto, tty, plain, rawjson, quiet
      --metadata-file FILE one JSON object keyed by target name
      --timeline FILE      every target's steps on one HTML timeline
      --allow ENTITLEMENT  security.insecure, network.host (every target)
      --provenance V, --sbom V   attestations for every target (as ocib build)
      --call=check, --check      lint every target instead of building
  -j, --jobs N             at most N steps at once over all targets
      --insecure-registry HOST[:PORT]   plain HTTP / unverified TLS for that registry

Examples:
  ocib bake --print
  ocib bake -f docker-bake.hcl --set '*.platform=linux/arm64' app
)";

int cmd_bake(const Args& a) {
  ocib::bake::Options o;
  ocib::control::Options& c = o.common;
  if (g_config.jobs) c.jobs = *g_config.jobs;
  if (g_config.progress) c.progress = *g_config.progress;
  if (g_config.network == "none") c.network = ocib::sandbox::Network::kNone;
  if (g_config.network == "host") c.network = ocib::sandbox::Network::kHost;
  c.insecure_registries = g_config.insecure_registries;
  c.registry_mirrors = g_config.mirrors;
  for (size_t i = 0; i < a.size(); ++i) {
    std::string v;
    const std::string& s = a[i];
    if (s == "-h" || s == "--help") {
      std::fputs(kBakeHelp, stdout);
      return 0;
    }
    bool needs_value = s == "-f" || s == "--file" || s == "--set" || s == "--progress" || s == "--metadata-file" ||
                       s == "--timeline" || s == "--allow" || s == "--provenance" || s == "--sbom" || s == "-j" ||
                       s == "--jobs" || s == "--list" || s == "--insecure-registry";
    if (needs_value && i + 1 >= a.size()) return fail("flag " + s + " needs a value", 2);
    if (take_value(a, i, "--file", "-f", &v)) {
      o.files.push_back(v);
    } else if (take_value(a, i, "--set", "", &v)) {
      o.set.push_back(v);
    } else if (s == "--print") {
      o.print = true;
    } else if (take_value(a, i, "--list", "", &v)) {
      if (v != "targets") return fail("--list " + v + ": only --list=targets is supported", 2);
      o.list_targets = true;
    } else if (s == "--push" || s == "--push=true") {
      o.push = true;
    } else if (s == "--load" || s == "--load=true") {
      o.load = true;
    } else if (s == "--no-cache") {
      c.no_cache = true;
    } else if (s == "--pull" || s == "--pull=true") {
      c.pull = "always";
    } else if (take_value(a, i, "--progress", "", &v)) {
      if (v != "auto" && v != "tty" && v != "plain" && v != "rawjson" && v != "quiet")
        return fail("unknown --progress mode \"" + v + "\" (auto, tty, plain, rawjson, quiet)", 2);
      c.progress = v;
    } else if (take_value(a, i, "--metadata-file", "", &v)) {
      o.metadata_file = v;
    } else if (take_value(a, i, "--timeline", "", &v)) {
      if (v.empty() || v == "-" || ocib::fs::is_dir(v) || !ocib::fs::is_dir(ocib::fs::dirname(v)))
        return fail("--timeline " + v + ": want a file name in an existing directory (FILE.html)", 2);
      o.timeline_file = v;
    } else if (take_value(a, i, "--allow", "", &v)) {
      for (const auto& e : ocib::split_commas(v)) {
        if (e != "security.insecure" && e != "network.host")
          return fail("--allow: unknown entitlement \"" + e + "\" (security.insecure, network.host)", 2);
        c.allow.push_back(e);
      }
    } else if (take_value(a, i, "--provenance", "", &v)) {
      if (auto p = ocib::exporter::parse_provenance(v, c.attest); !p.ok()) return fail(p.error().str(), 2);
      o.provenance_given = true;
    } else if (take_value(a, i, "--sbom", "", &v)) {
      if (auto p = ocib::exporter::parse_sbom(v, c.attest); !p.ok()) return fail(p.error().str(), 2);
    } else if (s == "--check" || s == "--call=check" || (s == "--call" && i + 1 < a.size() && a[i + 1] == "check")) {
      if (s == "--call") ++i;
      o.check = true;
    } else if (s == "--call" || s.rfind("--call=", 0) == 0) {
      std::string m = s == "--call" ? (i + 1 < a.size() ? a[i + 1] : "") : s.substr(7);
      if (m != "build") return fail("--call " + m + ": only build (the default) and check are supported", 2);
      if (s == "--call") ++i;
    } else if (take_value(a, i, "--jobs", "-j", &v)) {
      c.jobs = std::atoi(v.c_str());
      if (c.jobs < 1) return fail("--jobs needs a positive number", 2);
    } else if (take_value(a, i, "--insecure-registry", "", &v)) {
      c.insecure_registries.push_back(v);
    } else if (!s.empty() && s[0] == '-') {
      return fail("unknown flag " + s + " (see 'ocib bake --help')", 2);
    } else {
      o.targets.push_back(s);
    }
  }
  if ((o.print ? 1 : 0) + (o.list_targets ? 1 : 0) + (o.check ? 1 : 0) > 1)
    return fail("--print, --list and --check do not go together", 2);
  // Reading and resolving the files is all checking: its errors are usage errors.
  auto loaded = ocib::bake::load(o);
  if (!loaded.ok()) return fail(loaded.error().str(), 2);
  if (!o.print && !o.list_targets && !o.check) ocib::cli::install_signal_handlers();
  std::string out;
  auto done = ocib::bake::execute(o, *loaded, &out);
  std::fputs(out.c_str(), stdout);
  if (!done.ok()) {
    if (done.error().code() == ocib::Errc::kFailedStep && done.error().message() == ocib::bake::kCheckWarnings) return 1;
    if (ocib::cli::interrupted()) return fail("bake interrupted: " + done.error().str(), ocib::cli::interrupted_exit_code());
    return fail(done.error().str());
  }
  if (ocib::cli::interrupted()) return fail("bake interrupted (its outputs were already written)", ocib::cli::interrupted_exit_code());
  return 0;
}

int cmd_info(const Args&) {
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

int cmd_import(const Args& a) {
  if (a.size() == 1 && (a[0] == "-h" || a[0] == "--help")) {
    std::puts("Usage: ocib import [--platform OS/ARCH] FILE NAME[:TAG]\n\nImport a root filesystem tar (plain, gzip or zstd) or an OCI archive\n"
              "into the local store as NAME, usable in FROM. --platform: the rootfs's platform\n"
              "(default: the host's), e.g. an arm64 rootfs for ocib build --platform linux/arm64.\n\n"
              "Examples:\n  ocib import rootfs.tar debian:bookworm\n  ocib import --platform linux/arm64 rootfs-arm64.tar debian:bookworm-arm64");
    return 0;
  }
  std::vector<std::string> pos;
  std::optional<ocib::oci::Platform> platform;
  for (size_t i = 0; i < a.size(); ++i) {
    std::string v;
    if (take_value(a, i, "--platform", "", &v)) {
      auto p = ocib::oci::parse_list(v);
      if (!p.ok()) return fail("--platform: " + p.error().message(), 2);
      if (p->size() != 1) return fail("ocib import --platform takes one platform", 2);
      platform = p->front();
    } else if (!a[i].empty() && a[i][0] == '-') {
      return fail("unknown flag " + a[i] + " (see 'ocib import --help')", 2);
    } else {
      pos.push_back(a[i]);
    }
  }
  if (pos.size() != 2) return fail("usage: ocib import [--platform OS/ARCH] FILE NAME[:TAG]", 2);
  auto st = open_store();
  if (!st.ok()) return fail(st.error().str());
  // Shared, as a build holds it: `ocib prune` waits instead of deleting the blobs stored here
  // before the tag names them.
  auto gc = ocib::store::gc_lock(*st, false);
  if (!gc.ok()) return fail(gc.error().str());
  auto d = ocib::images::import_image(*st, pos[0], pos[1], platform ? &*platform : nullptr);
  if (!d.ok()) return fail(d.error().str());
  std::printf("%s\n", d->c_str());
  return 0;
}

int cmd_images(const Args& a) {
  if (!a.empty() && (a[0] == "-h" || a[0] == "--help")) {
    std::puts("Usage: ocib images\n\nList the images in the local store.");
    return 0;
  }
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

int cmd_du(const Args& a) {
  if (!a.empty()) {
    std::puts("Usage: ocib du\n\nShow the disk usage of the store.");
    return a[0] == "-h" || a[0] == "--help" ? 0 : 2;
  }
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

int cmd_prune(const Args& a) {
  ocib::store::PruneOptions po;
  for (size_t i = 0; i < a.size(); ++i) {
    std::string v;
    if (a[i] == "-h" || a[i] == "--help") {
      std::puts("Usage: ocib prune [--all] [--filter until=DURATION]\n\nRemove build cache entries "
                "(all, or those older than DURATION: 30m, 24h, 7d) and every snapshot and blob\n"
                "nothing references any more. --all also removes the tagged images.\n"
                "Waits for running builds on the same store.\n\nExample:\n  ocib prune --filter until=24h");
      return 0;
    } else if (a[i] == "-a" || a[i] == "--all") {
      po.all = true;
    } else if (a[i] == "-f" || a[i] == "--force") {
      // accepted for buildx compatibility: ocib never prompts
    } else if (take_value(a, i, "--filter", "", &v)) {
      if (v.rfind("until=", 0) != 0) return fail("unsupported filter \"" + v + "\" (until=DURATION)", 2);
      po.older_than_seconds = parse_duration(v.substr(6));
      if (po.older_than_seconds < 0) return fail("bad duration in \"" + v + "\"", 2);
    } else {
      return fail("unknown argument " + a[i] + " (see 'ocib prune --help')", 2);
    }
  }
  auto st = open_store();
  if (!st.ok()) return fail(st.error().str());
  ocib::IdMapping ids = ocib::sandbox::id_mapping();
  auto r = ocib::store::prune(*st, po, [&](const std::string& p) { return ocib::sandbox::remove_tree(p, ids); });
  if (!r.ok()) return fail(r.error().str());
  std::printf("removed %llu cache entries, %llu snapshots, %llu blobs: %s reclaimed\n",
              static_cast<unsigned long long>(r->cache_entries), static_cast<unsigned long long>(r->snapshots),
              static_cast<unsigned long long>(r->blobs), human(r->bytes).c_str());
  return 0;
}

int cmd_store(const Args& a) {
  if (a.size() != 1 || a[0] != "check") {
    std::puts("Usage: ocib store check\n\nVerify every blob's digest, every cache entry and every tagged image.\n"
              "Exit status 1 when a problem is found.");
    return a.size() == 1 && (a[0] == "-h" || a[0] == "--help") ? 0 : 2;
  }
  auto st = open_store();
  if (!st.ok()) return fail(st.error().str());
  auto r = ocib::store::check(*st);
  if (!r.ok()) return fail(r.error().str());
  for (const auto& p : r->problems) std::printf("problem: %s\n", p.c_str());
  std::printf("checked %llu blobs, %llu snapshots, %llu cache entries, %llu images: %s\n",
              static_cast<unsigned long long>(r->blobs), static_cast<unsigned long long>(r->snapshots),
              static_cast<unsigned long long>(r->cache_entries), static_cast<unsigned long long>(r->images),
              r->problems.empty() ? "ok" : (std::to_string(r->problems.size()) + " problems").c_str());
  return r->problems.empty() ? 0 : 1;
}

// Shared by pull and push: "--insecure-registry HOST" options, the rest positional.
bool registry_args(const Args& a, ocib::registry::Options& ro, std::vector<std::string>& pos, std::string* err) {
  ro.insecure_hosts = g_config.insecure_registries;
  ro.mirrors = g_config.mirrors;
  for (size_t i = 0; i < a.size(); ++i) {
    std::string v;
    if (take_value(a, i, "--insecure-registry", "", &v)) {
      ro.insecure_hosts.push_back(v);
    } else if (!a[i].empty() && a[i][0] == '-') {
      *err = "unknown flag " + a[i];
      return false;
    } else {
      pos.push_back(a[i]);
    }
  }
  return true;
}

int cmd_pull(const Args& a) {
  if (!a.empty() && (a[0] == "-h" || a[0] == "--help")) {
    std::puts("Usage: ocib pull [--insecure-registry HOST] REF\n\nPull an image from a registry into the store.\n\n"
              "Example:\n  ocib pull 127.0.0.1:5000/library/busybox:latest");
    return 0;
  }
  ocib::registry::Options ro;
  std::vector<std::string> pos;
  std::string err;
  if (!registry_args(a, ro, pos, &err)) return fail(err, 2);
  if (pos.size() != 1) return fail("usage: ocib pull [--insecure-registry HOST] REF", 2);
  auto ref = ocib::registry::Reference::parse(pos[0]);
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

int cmd_push(const Args& a) {
  if (!a.empty() && (a[0] == "-h" || a[0] == "--help")) {
    std::puts("Usage: ocib push [--insecure-registry HOST] NAME [DEST]\n\nPush a stored image to a registry "
              "(to DEST, or to NAME itself). Prints the pushed digest.\n\n"
              "Example:\n  ocib push app:1 registry.example.com/team/app:1");
    return 0;
  }
  ocib::registry::Options ro;
  std::vector<std::string> pos;
  std::string err;
  if (!registry_args(a, ro, pos, &err)) return fail(err, 2);
  if (pos.empty() || pos.size() > 2) return fail("usage: ocib push [--insecure-registry HOST] NAME [DEST]", 2);
  auto ref = ocib::registry::Reference::parse(pos.back());
  if (!ref.ok()) return fail(ref.error().str(), 2);
  auto st = open_store();
  if (!st.ok()) return fail(st.error().str());
  ocib::registry::Client client(ro);
  auto d = ocib::images::push_image(*st, client, pos[0], *ref);
  if (!d.ok()) return fail(d.error().str());
  auto s = client.stats();
  std::fprintf(stderr, "pushed %s: %d uploaded, %d already there, %d mounted\n", ref->str().c_str(), s.uploaded,
               s.skipped, s.mounted);
  std::printf("%s\n", d->c_str());
  return 0;
}

bool wants_help(const Args& a) {
  for (const auto& x : a)
    if (x == "-h" || x == "--help") return true;
  return false;
}

int cmd_tag(const Args& a) {
  if (wants_help(a) || a.size() != 2) {
    std::puts("Usage: ocib tag SOURCE TARGET\n\nGive a stored image another name.\n\nExample:\n  ocib tag app:1 registry.example.com/team/app:1");
    return wants_help(a) ? 0 : 2;
  }
  auto st = open_store();
  if (!st.ok()) return fail(st.error().str());
  // A prune between the lookup and the new tag would delete what the tag is about to name.
  auto gc = ocib::store::gc_lock(*st, false);
  if (!gc.ok()) return fail(gc.error().str());
  auto img = ocib::images::load_image(*st, a[0]);
  if (!img.ok()) return fail(img.error().str());
  auto t = st->tag(ocib::images::normalize_name(a[1]), img->manifest_digest);
  if (!t.ok()) return fail(t.error().str());
  return 0;
}

int cmd_rmi(const Args& a) {
  if (wants_help(a) || a.empty()) {
    std::puts("Usage: ocib rmi NAME...\n\nRemove image names from the store; 'ocib prune' reclaims their data.");
    return wants_help(a) ? 0 : 2;
  }
  auto st = open_store();
  if (!st.ok()) return fail(st.error().str());
  int rc = 0;
  for (const auto& n : a) {
    auto r = st->untag(ocib::images::normalize_name(n));
    if (!r.ok()) rc = fail(r.error().str());
    else std::printf("untagged %s\n", ocib::images::normalize_name(n).c_str());
  }
  return rc;
}

int cmd_inspect(const Args& a) {
  if (wants_help(a) || a.size() != 1) {
    std::puts("Usage: ocib inspect NAME\n\nPrint a stored image's manifest and config as JSON.");
    return wants_help(a) ? 0 : 2;
  }
  auto st = open_store();
  if (!st.ok()) return fail(st.error().str());
  // A prune between the lookup and the new tag would delete what the tag is about to name.
  auto gc = ocib::store::gc_lock(*st, false);
  if (!gc.ok()) return fail(gc.error().str());
  auto img = ocib::images::load_image(*st, a[0]);
  if (!img.ok()) return fail(img.error().str());
  auto manifest = ocib::fs::read_file(st->blob_path(img->manifest_digest));
  if (!manifest.ok()) return fail(manifest.error().str());
  nlohmann::json out = {{"Name", a[0]},
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

int cmd_login(const Args& a) {
  std::string user, password, host;
  bool password_stdin = false;
  ocib::registry::Options ro;
  for (size_t i = 0; i < a.size(); ++i) {
    std::string v;
    if (a[i] == "-h" || a[i] == "--help") {
      std::puts("Usage: ocib login [-u USER] [--password-stdin] [--insecure-registry HOST] REGISTRY\n\n"
                "Check the credentials against REGISTRY and store them in the Docker config file\n"
                "($DOCKER_CONFIG/config.json or ~/.docker/config.json).\n\n"
                "Example:\n  printf '%s' \"$TOKEN\" | ocib login -u ci --password-stdin registry.example.com");
      return 0;
    } else if (take_value(a, i, "--username", "-u", &v)) {
      user = v;
    } else if (take_value(a, i, "--password", "-p", &v)) {
      password = v;
    } else if (a[i] == "--password-stdin") {
      password_stdin = true;
    } else if (take_value(a, i, "--insecure-registry", "", &v)) {
      ro.insecure_hosts.push_back(v);
    } else if (!a[i].empty() && a[i][0] == '-') {
      return fail("unknown flag " + a[i], 2);
    } else {
      host = a[i];
    }
  }
  if (host.empty() || user.empty()) return fail("usage: ocib login -u USER [--password-stdin] REGISTRY", 2);
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

int cmd_logout(const Args& a) {
  if (wants_help(a) || a.size() != 1) {
    std::puts("Usage: ocib logout REGISTRY\n\nRemove stored credentials for REGISTRY from the Docker config file.");
    return wants_help(a) ? 0 : 2;
  }
  std::string path = docker_config_path();
  auto data = ocib::fs::read_file(path);
  if (!data.ok()) return fail("not logged in to " + a[0]);
  auto cfg = nlohmann::json::parse(*data, nullptr, false);
  if (cfg.is_discarded() || !cfg.contains("auths") || !cfg["auths"].contains(a[0])) return fail("not logged in to " + a[0]);
  cfg["auths"].erase(a[0]);
  if (auto w = ocib::fs::write_file_atomic(path, cfg.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", 0600); !w.ok()) return fail(w.error().str());
  std::printf("Removed login credentials for %s\n", a[0].c_str());
  return 0;
}

int cmd_version(const Args&) {
  std::printf("ocib %s\n", OCIB_VERSION);
  return 0;
}

constexpr const char* kTimelineHelp = R"(Usage: ocib timeline METADATA.json|- > FILE.html

Draw an earlier build's step timings (the file ocib build --metadata-file wrote) as a
self-contained HTML page, the one ocib build --timeline FILE.html writes: one lane per
concurrently running step, cached steps hatched, the critical path highlighted, each bar's
tooltip with the step, its stage and its duration. Nothing in the page is fetched.
- reads the metadata from stdin.

Example:
  ocib build --metadata-file m.json -o type=oci,dest=app.tar .
  ocib timeline m.json > timeline.html
)";

int cmd_timeline(const Args& a) {
  if (wants_help(a)) {
    std::fputs(kTimelineHelp, stdout);
    return 0;
  }
  if (a.size() != 1 || (a[0].size() > 1 && a[0][0] == '-')) {
    std::fputs(kTimelineHelp, stderr);
    return 2;
  }
  // "-": the metadata from stdin (ocib build --metadata-file /dev/stdout | ocib timeline -).
  const std::string& path = a[0];
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

struct Command {
  const char* name;
  std::function<int(const Args&)> fn;
};

}  // namespace


// `ocib manifest create|inspect`: buildx imagetools' multi-runner half. Each runner pushes its
// platform by digest; one job merges them into an index under the tags.
constexpr const char* kManifestHelp = R"(Usage: ocib manifest create -t REF [-t REF...] [--insecure-registry HOST] SOURCE...
       ocib manifest inspect [--raw] [--insecure-registry HOST] REF

create   Merge SOURCE manifests (single-platform images, or indexes whose entries are taken)
         into one image index and push it under every -t tag (docker buildx imagetools
         create). Sources in another repository of the same registry are mounted, not copied.
inspect  Show a manifest or index in a registry: its digest, media type and, for an index,
         each manifest with its platform. --raw prints the document as the registry serves it.

Example:
  ocib build -o type=image,name=reg.example.com/app,push-by-digest=true --metadata-file m.json .
  ocib manifest create -t reg.example.com/app:1.0 reg.example.com/app@sha256:... reg.example.com/app@sha256:...
)";

int cmd_manifest(const Args& a) {
  if (a.empty() || a[0] == "-h" || a[0] == "--help") {
    std::fputs(kManifestHelp, a.empty() ? stderr : stdout);
    return a.empty() ? 2 : 0;
  }
  const std::string sub = a[0];
  if (sub != "create" && sub != "inspect")
    return fail("unknown manifest command \"" + sub + "\"" + ocib::did_you_mean(sub, {"create", "inspect"}) +
                    " (see 'ocib manifest --help')",
                2);
  if (wants_help(a)) {
    std::fputs(kManifestHelp, stdout);
    return 0;
  }
  ocib::registry::Options ro;
  ro.insecure_hosts = g_config.insecure_registries;
  ro.mirrors = g_config.mirrors;
  std::vector<std::string> tags, pos;
  bool raw = false;
  for (size_t i = 1; i < a.size(); ++i) {
    std::string v;
    if (take_value(a, i, "--insecure-registry", "", &v)) {
      ro.insecure_hosts.push_back(v);
    } else if (sub == "create" && take_value(a, i, "--tag", "-t", &v)) {
      tags.push_back(v);
    } else if (sub == "inspect" && a[i] == "--raw") {
      raw = true;
    } else if (!a[i].empty() && a[i][0] == '-') {
      return fail("unknown flag " + a[i] + " for 'ocib manifest " + sub + "'", 2);
    } else {
      pos.push_back(a[i]);
    }
  }
  auto parse_refs = [](const std::vector<std::string>& in, std::vector<ocib::registry::Reference>* out) {
    for (const auto& s : in) {
      auto r = ocib::registry::Reference::parse(s);
      if (!r.ok()) return fail(r.error().str(), 2);
      out->push_back(*r);
    }
    return 0;
  };
  ocib::registry::Client client(ro);
  if (sub == "inspect") {
    if (pos.size() != 1) return fail("usage: ocib manifest inspect [--raw] REF", 2);
    std::vector<ocib::registry::Reference> refs;
    if (int rc = parse_refs(pos, &refs)) return rc;
    auto m = client.get_manifest(refs[0]);
    if (!m.ok()) return fail(m.error().str());
    if (raw) {
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
        if (auto p = e.find("platform"); p != e.end() && p->is_object())
          plat = p->value("os", "") + "/" + p->value("architecture", "") +
                 (p->value("variant", "").empty() ? "" : "/" + p->value("variant", ""));
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
  if (tags.empty()) return fail("ocib manifest create needs at least one -t REF", 2);
  if (pos.empty()) return fail("ocib manifest create needs at least one SOURCE", 2);
  std::vector<ocib::registry::Reference> dests, sources;
  if (int rc = parse_refs(tags, &dests)) return rc;
  if (int rc = parse_refs(pos, &sources)) return rc;
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

int main(int argc, char** argv) {
  const Command commands[] = {{"bake", cmd_bake}, {"build", cmd_build}, {"du", cmd_du},       {"images", cmd_images},
                              {"inspect", cmd_inspect}, {"login", cmd_login}, {"logout", cmd_logout}, {"manifest", cmd_manifest},
                              {"rmi", cmd_rmi}, {"tag", cmd_tag},
                              {"import", cmd_import}, {"info", cmd_info}, {"prune", cmd_prune}, {"pull", cmd_pull}, {"push", cmd_push},
                              {"store", cmd_store},  {"timeline", cmd_timeline}, {"version", cmd_version}};
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    std::fputs(kMainHelp, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) return cmd_version({});
  if (auto cfg = ocib::cli::load_config(); cfg.ok()) {
    g_config = std::move(*cfg);
    ocib::cli::apply_config_env(g_config);
  } else {
    return fail(cfg.error().str());
  }
  Args rest(argv + 2, argv + argc);
  for (const auto& c : commands)
    if (c.name == std::string(argv[1])) return c.fn(rest);
  return fail(std::string("unknown command \"") + argv[1] + "\" (see 'ocib --help')", 2);
}
