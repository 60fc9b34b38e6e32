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

Session::Session(const Options& common) : reporter_(progress::make_reporter(common.progress)) {}

Status Session::open(const Options& common) {
  OCIB_ASSIGN_OR_RETURN(store::Store st, store::Store::open(common.store_root.empty() ? store::Store::default_root() : common.store_root));
  store_ = std::make_unique<store::Store>(std::move(st));
  // Held shared for the whole build: `ocib prune` waits instead of deleting what we use.
  OCIB_ASSIGN_OR_RETURN(fs::FileLock gc, store::gc_lock(*store_, false));
  gc_ = std::make_unique<fs::FileLock>(std::move(gc));
  // Under the chroot isolation (no user namespace) an unprivileged caller has only its own ids.
  ids_ = common.plan_only ? IdMapping::detect() : sandbox::id_mapping();
  if (!common.plan_only) {
    // Choosing the snapshot driver costs probe steps (in the store's filesystem); a working
    // kernel overlay is remembered per store, uid and kernel. A fallback is said once.
    struct utsname u {};
    ::uname(&u);
    sandbox::ProbeOptions probe;
    probe.cache_file = fs::join(store_->root(), "tmp/../probe-" + std::to_string(::getuid()) + "-" + u.release);
    probe.dir = fs::join(store_->root(), "tmp");
    OCIB_ASSIGN_OR_RETURN(sandbox::SnapshotDriver driver, sandbox::snapshot_driver(ids_, probe));
    if (driver.fallback) log::warn("snapshots: using the " + driver.name + " driver: " + driver.reason);
    OCIB_ASSIGN_OR_RETURN(sandbox::ProcIsolation proc, sandbox::proc_isolation());
    if (proc.fallback) log::warn("isolation: " + proc.name + ": " + proc.reason);
  }
  const IdMapping& ids = ids_;
  store_->clean_tmp([&ids](const std::string& p) { return sandbox::remove_tree(p, ids); });

  registry::Options ro;
  ro.insecure_hosts = common.insecure_registries;
  ro.mirrors = common.registry_mirrors;
  progress::Reporter* rep = reporter_.get();
  ro.progress = [rep](const std::string& what, uint64_t cur, uint64_t total) { rep->transfer(what, cur, total); };
  client_ = std::make_unique<registry::Client>(ro);
  return {};
}

// What a Build keeps between its phases (the solvers hold references into it).
struct Build::State {
  std::string started;
  std::optional<int64_t> epoch;
  std::map<std::string, std::string> ssh;  // --ssh, key files' agents included
  std::vector<KeyAgent> agents;            // alive until the build is done
  std::string context;
  std::string text;   // the Dockerfile
  std::string shown;  // its name in errors
  dockerfile::Dockerfile df;
  std::shared_ptr<dockerfile::Matcher> ignore;
  UniqueFd ctx;
  std::map<std::string, plan::NamedContext> named;
  std::map<std::string, std::string> layout_images;  // "oci-layout://..." -> digest in the store
  std::unique_ptr<StoreSources> sources;
  copy::SourceFilter context_filter;
  int id_base = 0, steps = 0;
  solver::Options so;
  std::vector<std::unique_ptr<solver::Solver>> solvers;
};

Build::Build(const Options& opts, Session& session) : opts_(opts), session_(session) {}

Build::~Build() {
  // The solvers (packing threads) go before the plans and options they refer to.
  if (st_) st_->solvers.clear();
}

Result<std::unique_ptr<Build>> Build::read(const Options& opts, Session& session) {
  std::unique_ptr<Build> b(new Build(opts, session));
  b->st_ = std::make_unique<State>();
  State& x = *b->st_;
  x.started = oci::rfc3339(static_cast<int64_t>(::time(nullptr)));
  OCIB_ASSIGN_OR_RETURN(x.epoch, source_date_epoch(opts));
  // --ssh key files: an agent of the build's own holds them (a key that cannot be loaded is a
  // usage error, before any work).
  x.ssh = opts.ssh;
  for (const auto& [id, keys] : opts.ssh_keys) {
    OCIB_ASSIGN_OR_RETURN(KeyAgent a, KeyAgent::start(id, keys));
    x.ssh[id] = a.socket();
    x.agents.push_back(std::move(a));
  }
  if (!fs::is_dir(opts.context)) return Error::invalid("build context \"" + opts.context + "\" is not a directory");
  OCIB_ASSIGN_OR_RETURN(x.context, fs::real_path(opts.context));
  const std::string default_name = dockerfile::default_dockerfile(x.context);
  std::string dfpath = opts.dockerfile.empty() ? fs::join(x.context, default_name) : opts.dockerfile;
  auto text = opts.dockerfile == "-" ? Result<std::string>(opts.dockerfile_text) : fs::read_file(dfpath);
  if (!text.ok()) return Error::invalid("cannot read Dockerfile " + dfpath + ": " + text.error().message());
  // As BuildKit: bytes that are not UTF-8 (a Latin-1 é) read as U+FFFD, in every instruction.
  x.text = dockerfile::utf8(*text);
  x.shown = opts.dockerfile.empty() ? default_name : opts.dockerfile == "-" ? "Dockerfile" : opts.dockerfile;
  auto parsed = dockerfile::parse(x.text, x.shown);
  if (!parsed.ok()) {
    const Error& e = parsed.error();
    Error out(e.code(), e.message() + "\n" + dockerfile::render_error_context(x.text, e));
    if (e.loc()) out.with_loc(*e.loc());
    return out;
  }
  x.df = std::move(parsed).value();
  if (!x.df.syntax.empty())
    session.reporter().note("note: ignoring `# syntax=" + x.df.syntax + "`: ocib's Dockerfile frontend is built in");
  if (std::string ip = dockerfile::dockerignore_path(x.context, opts.dockerfile); !ip.empty()) {
    OCIB_ASSIGN_OR_RETURN(std::string itext, fs::read_file(ip));
    auto m = dockerfile::parse_dockerignore(itext);
    if (!m.ok()) return std::move(m).error().wrap(ip);
    x.ignore = std::make_shared<dockerfile::Matcher>(std::move(m).value());
  }
  return b;
}

Status Build::plan(int id_base) {
  State& x = *st_;
  const Options& opts = opts_;
  store::Store& st = session_.store();
  progress::Reporter& reporter = session_.reporter();
  x.ctx = UniqueFd(::open(x.context.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!x.ctx.valid()) return Error::from_errno("open context " + x.context, errno);
  OCIB_TRY(open_named_contexts(opts, st, x.named, x.layout_images));
  images::PullPolicy pull = opts.pull == "always"    ? images::PullPolicy::kAlways
                            : opts.pull == "missing" ? images::PullPolicy::kMissing
                            : opts.pull == "never"   ? images::PullPolicy::kNever
                                                     : images::PullPolicy::kDefault;
  x.sources = std::make_unique<StoreSources>(st, session_.client(), reporter, pull, x.layout_images, x.ctx.get());

  // Context file digests by (path, size, mtime, ctime, inode, mode): a no-op rebuild reads no
  // file contents.
  const std::string hash_cache = fs::join(st.root(), "ctxhash/" + Sha256::hex(x.context).substr(0, 32));
  ::unlink((hash_cache + ".json").c_str());  // the earlier (JSON) format's file
  auto hashes = copy::HashCache::load(hash_cache + ".v2");
  x.context_filter.hashes = hashes;
  if (auto ignore = x.ignore) {
    x.context_filter.excluded = [ignore](const std::string& rel, bool is_dir) { return ignore->excluded(rel, is_dir); };
    x.context_filter.descend = [ignore](const std::string& rel) { return ignore->may_contain_included(rel); };
  }

  // One plan per platform, all solved on the same store (steps that are the same on every
  // platform, like a FROM --platform=$BUILDPLATFORM stage, run once: the second finds them cached).
  std::vector<oci::Platform> platforms = opts.platforms;
  if (platforms.empty()) platforms = {oci::host()};
  for (size_t i = 0; i < platforms.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (oci::same(platforms[i], platforms[j]))
        return Error::invalid("--platform lists " + oci::str(platforms[i]) + " twice");
  plans_.clear();
  plans_.reserve(platforms.size());
  x.id_base = id_base;
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
    req.named_contexts = x.named;
    req.platform = p;
    req.multi_platform = platforms.size() > 1;
    req.id_base = id_base;
    req.context_fd = x.ctx.get();
    req.context_filter = x.context_filter;
    OCIB_ASSIGN_OR_RETURN(plan::Plan pl, plan::make_plan(x.df, req, *x.sources));
    id_base += static_cast<int>(pl.steps.size());
    plans_.push_back(std::move(pl));
  }
  x.steps = id_base - x.id_base;
  if (auto saved = hashes->save(); !saved.ok()) log::warn("context hash cache: " + saved.error().str());
  return {};
}

int Build::steps() const { return st_->steps; }

std::string Build::plan_json() const {
  std::vector<std::string> steps;
  for (const auto& pl : plans_) plan::describe(pl, steps);
  std::string r = "[\n";
  for (size_t i = 0; i < steps.size(); ++i) r += "  " + steps[i] + (i + 1 < steps.size() ? ",\n" : "\n");
  r += "]\n";
  return r;
}

Status Build::make_solvers(std::shared_ptr<dag::JobSlots> slots) {
  State& x = *st_;
  const Options& opts = opts_;
  OCIB_TRY(cache::check_cache_specs(opts.cache_to, opts.cache_from));
  for (const auto& name : opts.no_cache_filter) {
    bool known = false;
    for (const auto& s : x.df.stages) known = known || (!s.name.empty() && ascii_lower(s.name) == ascii_lower(name));
    if (!known) session_.reporter().note("warning: --no-cache-filter: no stage named \"" + name + "\" in the Dockerfile");
  }
  solver::Options& so = x.so;
  so.context = x.context;
  so.context_fd = x.ctx.get();
  so.context_filter = x.context_filter;
  so.secrets = opts.secrets;
  so.ssh = x.ssh;
  so.no_cache = opts.no_cache;
  so.no_cache_filter = opts.no_cache_filter;
  so.cache_from = opts.cache_from;
  so.jobs = opts.jobs;
  so.source_date_epoch = x.epoch;
  so.executed = session_.executed();
  for (const auto& o : opts.outputs) {
    if (auto c = o.attrs.find("compression"); c != o.attrs.end()) {
      if (c->second == "zstd") so.compression = layers::Compression::kZstd;
      else if (c->second == "uncompressed") so.compression = layers::Compression::kNone;
      else so.compression = layers::Compression::kGzip;
    }
    if (auto l = o.attrs.find("compression-level"); l != o.attrs.end()) so.compression_level = std::atoi(l->second.c_str());
  }
  // -j bounds the build, not each platform: the platforms' schedulers share the slots.
  if (!slots && plans_.size() > 1)
    slots = std::make_shared<dag::JobSlots>(opts.jobs > 0 ? opts.jobs : std::max(4, static_cast<int>(std::thread::hardware_concurrency())));
  x.solvers.clear();
  for (auto& pl : plans_) {
    x.solvers.push_back(std::make_unique<solver::Solver>(so, session_.store(), session_.reporter(), session_.ids(), pl,
                                                         session_.client(), slots));
    OCIB_TRY(x.solvers.back()->load_cache_imports());
  }
  return {};
}

std::vector<solver::Solver*> Build::solvers() const {
  std::vector<solver::Solver*> out;
  for (const auto& s : st_->solvers) out.push_back(s.get());
  return out;
}

Error Build::located(const Error& e) const {
  if (!e.loc() || e.loc()->file != st_->shown) return e;
  std::string excerpt = dockerfile::render_error_context(st_->text, e);
  if (excerpt.empty()) return e;
  Error out(e.code(), e.body() + "\n" + excerpt);
  out.with_loc(*e.loc()).with_exit_code(e.exit_code());
  return out;
}

Status solve(const std::vector<Build*>& builds) {
  std::vector<std::pair<const Build*, solver::Solver*>> all;
  for (const Build* b : builds)
    for (solver::Solver* s : b->solvers()) all.push_back({b, s});
  if (all.size() == 1) {
    Status done = all.front().second->execute();
    if (!done.ok()) return all.front().first->located(done.error());
    return {};
  }
  // The platforms (and targets) build concurrently, as in BuildKit (an emulated one is slow;
  // the others need not wait for it). A failure cancels every sandbox (cancel_all is
  // process-wide), so the error to report is the one that was not a cancellation.
  std::vector<std::future<Status>> running;
  for (auto& [b, s] : all) running.push_back(std::async(std::launch::async, [s = s] { return s->execute(); }));
  std::optional<Error> first, cause;
  for (size_t i = 0; i < running.size(); ++i) {
    Status s = running[i].get();
    if (s.ok()) continue;
    Error e = all[i].first->located(s.error());
    if (!first) first = e;
    if (!cause && s.error().code() != Errc::kCancelled) cause = e;
  }
  if (cause) return *cause;
  if (first) return *first;
  return {};
}

Result<BuildResult> Build::export_images(bool summary) {
  State& x = *st_;
  const Options& opts = opts_;
  // Bases pulled without their layers are complete now: tagged, as a full pull tags them.
  for (const auto& l : x.sources->lazy_pulls())
    if (!l.tag.empty() && images::load_image(session_.store(), l.manifest_digest).ok())
      if (Status t = session_.store().tag(l.tag, l.manifest_digest); !t.ok()) log::warn("tag " + l.tag + ": " + t.error().str());
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
  eo.source_date_epoch = x.so.source_date_epoch;
  eo.attest = opts.attest;
  eo.summary = summary;
  eo.facts.started = x.started;
  eo.facts.invocation_id = Sha256::hex(x.started + std::to_string(::getpid()) + opts.context).substr(0, 26);
  eo.facts.dockerfile = opts.dockerfile.empty() || opts.dockerfile == "-" ? "Dockerfile" : fs::basename(opts.dockerfile);
  eo.facts.build_args = opts.build_args;
  eo.facts.target = opts.target;
  exporter::Exporter exp(eo, session_.store(), session_.reporter(), session_.ids(), session_.client());
  std::vector<exporter::BuiltImage> images;
  std::vector<const solver::Solver*> solved;
  for (auto& s : x.solvers) {
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

Result<BuildResult> run(const Options& opts) {
  Session session(opts);
  OCIB_ASSIGN_OR_RETURN(std::unique_ptr<Build> b, Build::read(opts, session));
  OCIB_TRY(session.open(opts));
  OCIB_TRY(b->plan(0));
  if (opts.plan_only) {
    BuildResult r;
    r.plan = b->plan_json();
    return r;
  }
  OCIB_TRY(b->make_solvers(nullptr));
  OCIB_TRY(solve({b.get()}));
  return b->export_images();
}

}  // namespace ocib::control
