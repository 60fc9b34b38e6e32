#include "control/control.h"
#include "control/ssh_keys.h"

#include <fcntl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <future>
#include <memory>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/cancel.h"
#include "base/fd.h"
#include "base/fs.h"
#include "base/log.h"
#include "base/sha256.h"
#include "copy/hash_cache.h"
#include "dockerfile/dockerfile.h"
#include "dockerfile/dockerignore.h"
#include "exporter/exporter.h"
#include "images/images.h"
#include "oci/platform.h"
#include "plan/planner.h"
#include "control/sources.h"
#include "progress/progress.h"
#include "store/maintenance.h"
#include "store/store.h"

namespace ocib::control {

using nlohmann::json;

namespace {

}  // namespace

// SOURCE_DATE_EPOCH: the build arg (BuildKit's way; buildx passes its environment variable as
// one), else the environment. Not a number of seconds is a usage error.
Result<std::optional<int64_t>> source_date_epoch(const Options& opts) {
  std::optional<std::string> sde;
  if (auto a = opts.build_args.find("SOURCE_DATE_EPOCH"); a != opts.build_args.end()) sde = a->second;
  else if (const char* e = std::getenv("SOURCE_DATE_EPOCH"); e && *e) sde = e;
  if (!sde || sde->empty()) return std::optional<int64_t>{};
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(sde->c_str(), &end, 10);
  if (*end != 0 || errno || v < 0 || !std::isdigit(static_cast<unsigned char>((*sde)[0])))
    return Error::invalid("invalid SOURCE_DATE_EPOCH \"" + *sde + "\": not a Unix timestamp in seconds");
  return std::optional<int64_t>{v};
}

Result<BuildResult> run(const Options& opts) {
  const std::string started = oci::rfc3339(static_cast<int64_t>(::time(nullptr)));
  auto reporter = progress::make_reporter(opts.progress);
  OCIB_ASSIGN_OR_RETURN(std::optional<int64_t> epoch, source_date_epoch(opts));
  // --ssh key files: an agent of the build's own holds them (a key that cannot be loaded is a
  // usage error, before any work).
  std::map<std::string, std::string> ssh = opts.ssh;
  std::vector<KeyAgent> agents;  // alive until the build is done
  for (const auto& [id, keys] : opts.ssh_keys) {
    OCIB_ASSIGN_OR_RETURN(KeyAgent a, KeyAgent::start(id, keys));
    ssh[id] = a.socket();
    agents.push_back(std::move(a));
  }
  if (!fs::is_dir(opts.context)) return Error::invalid("build context \"" + opts.context + "\" is not a directory");
  OCIB_ASSIGN_OR_RETURN(std::string context, fs::real_path(opts.context));
  const std::string default_name = dockerfile::default_dockerfile(context);
  std::string dfpath = opts.dockerfile.empty() ? fs::join(context, default_name) : opts.dockerfile;
  auto text = opts.dockerfile == "-" ? Result<std::string>(opts.dockerfile_text) : fs::read_file(dfpath);
  if (!text.ok()) return Error::invalid("cannot read Dockerfile " + dfpath + ": " + text.error().message());
  // As BuildKit: bytes that are not UTF-8 (a Latin-1 é) read as U+FFFD, in every instruction.
  *text = dockerfile::utf8(*text);
  std::string shown = opts.dockerfile.empty() ? default_name : opts.dockerfile == "-" ? "Dockerfile" : opts.dockerfile;
  auto parsed = dockerfile::parse(*text, shown);
  if (!parsed.ok()) {
    const Error& e = parsed.error();
    Error out(e.code(), e.message() + "\n" + dockerfile::render_error_context(*text, e));
    if (e.loc()) out.with_loc(*e.loc());
    return out;
  }
  dockerfile::Dockerfile df = std::move(parsed).value();
  if (!df.syntax.empty())
    reporter->note("note: ignoring `# syntax=" + df.syntax + "`: ocib's Dockerfile frontend is built in");
  std::shared_ptr<dockerfile::Matcher> ignore;
  if (std::string ip = dockerfile::dockerignore_path(context, opts.dockerfile); !ip.empty()) {
    OCIB_ASSIGN_OR_RETURN(std::string itext, fs::read_file(ip));
    auto m = dockerfile::parse_dockerignore(itext);
    if (!m.ok()) return std::move(m).error().wrap(ip);
    ignore = std::make_shared<dockerfile::Matcher>(std::move(m).value());
  }

  OCIB_ASSIGN_OR_RETURN(store::Store st, store::Store::open(opts.store_root.empty() ? store::Store::default_root() : opts.store_root));
  // Held shared for the whole build: `ocib prune` waits instead of deleting what we use.
  OCIB_ASSIGN_OR_RETURN(fs::FileLock gc, store::gc_lock(st, false));
  // Under the chroot isolation (no user namespace) an unprivileged caller has only its own ids.
  IdMapping ids = opts.plan_only ? IdMapping::detect() : sandbox::id_mapping();
  if (!opts.plan_only) {
    // Choosing the snapshot driver costs probe steps (in the store's filesystem); a working
    // kernel overlay is remembered per store, uid and kernel. A fallback is said once.
    struct utsname u {};
    ::uname(&u);
    sandbox::ProbeOptions probe;
    probe.cache_file = fs::join(st.root(), "tmp/../probe-" + std::to_string(::getuid()) + "-" + u.release);
    probe.dir = fs::join(st.root(), "tmp");
    OCIB_ASSIGN_OR_RETURN(sandbox::SnapshotDriver driver, sandbox::snapshot_driver(ids, probe));
    if (driver.fallback) log::warn("snapshots: using the " + driver.name + " driver: " + driver.reason);
    OCIB_ASSIGN_OR_RETURN(sandbox::ProcIsolation proc, sandbox::proc_isolation());
    if (proc.fallback) log::warn("isolation: " + proc.name + ": " + proc.reason);
  }
  st.clean_tmp([&ids](const std::string& p) { return sandbox::remove_tree(p, ids); });

  UniqueFd ctx(::open(context.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!ctx.valid()) return Error::from_errno("open context " + context, errno);

  registry::Options ro;
  ro.insecure_hosts = opts.insecure_registries;
  ro.mirrors = opts.registry_mirrors;
  progress::Reporter* rep = reporter.get();
  ro.progress = [rep](const std::string& what, uint64_t cur, uint64_t total) { rep->transfer(what, cur, total); };
  registry::Client client(ro);

  std::map<std::string, plan::NamedContext> named;
  std::map<std::string, std::string> layout_images;  // "oci-layout://..." -> digest in the store
  OCIB_TRY(open_named_contexts(opts, st, named, layout_images));
  images::PullPolicy pull = opts.pull == "always"    ? images::PullPolicy::kAlways
                            : opts.pull == "missing" ? images::PullPolicy::kMissing
                            : opts.pull == "never"   ? images::PullPolicy::kNever
                                                     : images::PullPolicy::kDefault;
  StoreSources sources(st, client, *reporter, pull, layout_images, ctx.get());

  // Context file digests by (path, size, mtime, ctime, inode, mode): a no-op rebuild reads no
  // file contents.
  const std::string hash_cache = fs::join(st.root(), "ctxhash/" + Sha256::hex(context).substr(0, 32));
  ::unlink((hash_cache + ".json").c_str());  // the earlier (JSON) format's file
  auto hashes = copy::HashCache::load(hash_cache + ".v2");
  copy::SourceFilter context_filter;
  context_filter.hashes = hashes;
  if (ignore) {
    context_filter.excluded = [ignore](const std::string& rel, bool is_dir) { return ignore->excluded(rel, is_dir); };
    context_filter.descend = [ignore](const std::string& rel) { return ignore->may_contain_included(rel); };
  }

  // One plan per platform, all solved on the same store (steps that are the same on every
  // platform, like a FROM --platform=$BUILDPLATFORM stage, run once: the second finds them cached).
  std::vector<oci::Platform> platforms = opts.platforms;
  if (platforms.empty()) platforms = {oci::host()};
  for (size_t i = 0; i < platforms.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (oci::same(platforms[i], platforms[j]))
        return Error::invalid("--platform lists " + oci::str(platforms[i]) + " twice");
  std::vector<plan::Plan> plans;
  plans.reserve(platforms.size());
  int id_base = 0;
  for (const auto& p : platforms) {
    plan::Request req;
    req.target = opts.target;
    req.build_args = opts.build_args;
    req.network = opts.network == sandbox::Network::kHost   ? plan::Network::kHost
                  : opts.network == sandbox::Network::kNone ? plan::Network::kNone
                                                            : plan::Network::kDefault;
    req.allow = opts.allow;
    req.extra_hosts = opts.extra_hosts;
    req.shm_size = opts.shm_size;
    req.ulimits = opts.ulimits;
    req.named_contexts = named;
    req.platform = p;
    req.multi_platform = platforms.size() > 1;
    req.id_base = id_base;
    req.context_fd = ctx.get();
    req.context_filter = context_filter;
    OCIB_ASSIGN_OR_RETURN(plan::Plan pl, plan::make_plan(df, req, sources));
    id_base += static_cast<int>(pl.steps.size());
    plans.push_back(std::move(pl));
  }
  if (auto saved = hashes->save(); !saved.ok()) log::warn("context hash cache: " + saved.error().str());
  if (opts.plan_only) {
    std::vector<std::string> steps;
    for (const auto& pl : plans) plan::describe(pl, steps);
    BuildResult r;
    r.plan = "[\n";
    for (size_t i = 0; i < steps.size(); ++i) r.plan += "  " + steps[i] + (i + 1 < steps.size() ? ",\n" : "\n");
    r.plan += "]\n";
    return r;
  }

  OCIB_TRY(cache::check_cache_specs(opts.cache_to, opts.cache_from));
  for (const auto& name : opts.no_cache_filter) {
    bool known = false;
    for (const auto& s : df.stages) known = known || (!s.name.empty() && ascii_lower(s.name) == ascii_lower(name));
    if (!known) reporter->note("warning: --no-cache-filter: no stage named \"" + name + "\" in the Dockerfile");
  }
  solver::Options so;
  so.context = context;
  so.context_fd = ctx.get();
  so.context_filter = context_filter;
  so.secrets = opts.secrets;
  so.ssh = ssh;
  so.no_cache = opts.no_cache;
  so.no_cache_filter = opts.no_cache_filter;
  so.cache_from = opts.cache_from;
  so.jobs = opts.jobs;
  so.source_date_epoch = epoch;
  for (const auto& o : opts.outputs) {
    if (auto c = o.attrs.find("compression"); c != o.attrs.end()) {
      if (c->second == "zstd") so.compression = layers::Compression::kZstd;
      else if (c->second == "uncompressed") so.compression = layers::Compression::kNone;
      else so.compression = layers::Compression::kGzip;
    }
    if (auto l = o.attrs.find("compression-level"); l != o.attrs.end()) so.compression_level = std::atoi(l->second.c_str());
  }
  // -j bounds the build, not each platform: the platforms' schedulers share the slots.
  std::shared_ptr<dag::JobSlots> slots;
  if (plans.size() > 1)
    slots = std::make_shared<dag::JobSlots>(opts.jobs > 0 ? opts.jobs : std::max(4, static_cast<int>(std::thread::hardware_concurrency())));
  std::vector<std::unique_ptr<solver::Solver>> solvers;
  for (auto& pl : plans) {
    solvers.push_back(std::make_unique<solver::Solver>(so, st, *reporter, ids, pl, client, slots));
    OCIB_TRY(solvers.back()->load_cache_imports());
  }
  // A failed step names its Dockerfile line; show that line, as for parse errors.
  auto located = [&](const Error& e) {
    if (!e.loc() || e.loc()->file != shown) return e;
    std::string excerpt = dockerfile::render_error_context(*text, e);
    if (excerpt.empty()) return e;
    Error out(e.code(), e.body() + "\n" + excerpt);
    out.with_loc(*e.loc()).with_exit_code(e.exit_code());
    return out;
  };
  if (solvers.size() == 1) {
    Status done = solvers.front()->execute();
    if (!done.ok()) return located(done.error());
  } else {
    // The platforms build concurrently, as in BuildKit (an emulated one is slow; the others
    // need not wait for it). A failure cancels every sandbox (cancel_all is process-wide), so
    // the error to report is the one that was not a cancellation.
    std::vector<std::future<Status>> running;
    for (auto& s : solvers) running.push_back(std::async(std::launch::async, [&s] { return s->execute(); }));
    std::optional<Error> first, cause;
    for (auto& f : running) {
      Status s = f.get();
      if (s.ok()) continue;
      if (!first) first = s.error();
      if (!cause && s.error().code() != Errc::kCancelled) cause = s.error();
    }
    if (cause) return located(*cause);
    if (first) return located(*first);
  }

  exporter::Options eo;
  eo.tags = opts.tags;
  eo.annotations = opts.annotations;
  for (const auto& o : opts.outputs)
    for (auto& a : exporter::output_annotations(o)) eo.annotations.push_back(std::move(a));
  eo.labels = opts.labels;
  eo.outputs = opts.outputs;
  eo.cache_to = opts.cache_to;
  eo.metadata_file = opts.metadata_file;
  eo.timeline_file = opts.timeline_file;
  eo.iidfile = opts.iidfile;
  eo.source_date_epoch = so.source_date_epoch;
  eo.attest = opts.attest;
  eo.facts.started = started;
  eo.facts.invocation_id = Sha256::hex(started + std::to_string(::getpid()) + opts.context).substr(0, 26);
  eo.facts.dockerfile = opts.dockerfile.empty() || opts.dockerfile == "-" ? "Dockerfile" : fs::basename(opts.dockerfile);
  eo.facts.build_args = opts.build_args;
  eo.facts.target = opts.target;
  exporter::Exporter exp(eo, st, *reporter, ids, client);
  std::vector<exporter::BuiltImage> images;
  std::vector<const solver::Solver*> solved;
  for (auto& s : solvers) {
    OCIB_ASSIGN_OR_RETURN(exporter::BuiltImage image, exp.make_image(*s));
    images.push_back(std::move(image));
    solved.push_back(s.get());
  }
  OCIB_TRY(check_cancelled("build"));  // interrupted after the last layer was packed
  OCIB_ASSIGN_OR_RETURN(exporter::ExportResult done, exp.export_outputs(solved, images));
  BuildResult r;
  r.manifest_digest = done.manifest_digest;
  r.config_digest = done.config_digest;
  r.image_id = done.image_id;
  return r;
}

}  // namespace ocib::control
