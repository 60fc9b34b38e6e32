#include "solver/solver.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <future>
#include <mutex>
#include <random>
#include <semaphore>
#include <set>
#include <thread>

#include "base/fd.h"
#include "base/fs.h"
#include "base/log.h"
#include "base/process.h"
#include "base/sha256.h"
#include "images/images.h"
#include "layers/unpack.h"
#include "solver/durations.h"
#include "solver/emulation.h"
#include "solver/flatten.h"
#include "solver/pack_snapshot.h"
#include "solver/sandboxed.h"
#include "solver/userdb.h"

namespace ocib::solver {

std::string compression_name(layers::Compression c) {
  switch (c) {
    case layers::Compression::kZstd: return "zstd";
    case layers::Compression::kNone: return "uncompressed";
    default: return "gzip";
  }
}

namespace {

// A layer that hides what `filter` excludes beneath `root_fd` when stacked over it in an overlay:
// a whiteout per excluded entry (directories whose contents may be re-included by a `!` rule are
// walked instead), in parent directories with the context's modes. nullopt: nothing excluded.
// Never follows a symlink of the context.
Result<std::optional<std::string>> ignore_mask(int root_fd, const copy::SourceFilter& filter, const std::string& dir) {
  std::vector<std::string> hidden;
  std::function<Status(int, const std::string&)> walk = [&](int dfd, const std::string& rel) -> Status {
    int fd = ::openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Error::from_errno("read context directory " + (rel.empty() ? "." : rel), errno);
    DIR* d = ::fdopendir(fd);
    if (!d) {
      ::close(fd);
      return Error::from_errno("read context directory " + rel, errno);
    }
    std::unique_ptr<DIR, int (*)(DIR*)> closer(d, ::closedir);
    std::vector<std::pair<std::string, bool>> entries;
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      struct stat st;
      if (::fstatat(::dirfd(d), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
      entries.emplace_back(name, S_ISDIR(st.st_mode));
    }
    for (const auto& [name, is_dir] : entries) {
      std::string child = rel.empty() ? name : rel + "/" + name;
      bool excluded = filter.excluded(child, is_dir);
      if (excluded && !(is_dir && filter.descend && filter.descend(child))) {
        hidden.push_back(child);
      } else if (is_dir) {
        UniqueFd sub(::openat(::dirfd(d), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (sub.valid()) OCIB_TRY(walk(sub.get(), child));
      }
    }
    return {};
  };
  OCIB_TRY(walk(root_fd, ""));
  if (hidden.empty()) return std::optional<std::string>();
  OCIB_TRY(fs::mkdirs(dir, 0755));
  // The overlay shows the topmost layer's directories: give the mask's the context's modes
  // (once everything is created in them).
  std::map<std::string, mode_t> modes;
  struct stat rst;
  if (::fstat(root_fd, &rst) == 0) modes[""] = rst.st_mode & 07777;
  for (const auto& rel : hidden) {
    size_t pos = 0;
    for (size_t slash; (slash = rel.find('/', pos)) != std::string::npos; pos = slash + 1) {
      std::string prefix = rel.substr(0, slash);
      if (modes.count(prefix)) continue;
      struct stat st;
      if (::fstatat(root_fd, prefix.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) return Error::from_errno("stat context " + prefix, errno);
      std::string at = fs::join(dir, prefix);
      if (::mkdir(at.c_str(), 0755) < 0 && errno != EEXIST) return Error::from_errno("mkdir " + at, errno);
      modes[prefix] = st.st_mode & 07777;
    }
    std::string wh = fs::join(dir, rel);
    if (::mknod(wh.c_str(), S_IFCHR, makedev(0, 0)) < 0)
      return Error::from_errno("RUN --mount=type=bind: hide .dockerignore'd " + rel + " (mknod whiteout)", errno);
  }
  for (auto it = modes.rbegin(); it != modes.rend(); ++it)
    ::chmod((it->first.empty() ? dir : fs::join(dir, it->first)).c_str(), it->second);
  return std::optional<std::string>(dir);
}

}  // namespace

Solver::Solver(const Options& opts, store::Store& st, progress::Reporter& reporter, const IdMapping& ids,
               plan::Plan& plan, registry::Client& client, std::shared_ptr<dag::JobSlots> slots)
    : opts_(opts), store_(st), reporter_(reporter), ids_(ids), plan_(plan), client_(client), slots_(std::move(slots)),
      flattener_(flatten::attach(st, ids)) {}

// Turns the step's mounts into sandbox mounts. Secrets are read now and stay in memory (a tmpfs
// of the step's own); env-style secrets reach only the process.
Status Solver::add_run_mounts(const plan::Step& s, sandbox::Spec& spec, std::vector<std::string>& env,
                               std::vector<fs::FileLock>& locks) {
  int n = 0;
  for (const auto& m : s.mounts) {
    sandbox::Mount sm;
    sm.target = m.target;
    if (m.type == plan::RunMount::Type::kCache) {
      std::string dir = fs::join(store_.root(), "cache-mounts/" + Sha256::hex(m.id).substr(0, 24));
      const bool created = !fs::is_dir(dir);
      OCIB_TRY(fs::mkdirs(dir, 0755));
      if (m.mode) ::chmod(dir.c_str(), m.mode);
      // BuildKit gives a new cache directory uid:gid (in the container's ids); done by the
      // sandbox, which can chown to them.
      if (created && (m.uid || m.gid)) {
        sm.chown_uid = m.uid.value_or(0);
        sm.chown_gid = m.gid.value_or(0);
      }
      if (created && m.from_stage && m.from_top) {
        if (Status seeded = seed_cache(dir, m, spec.scratch); !seeded.ok()) {
          (void)sandbox::remove_tree(dir, ids_);  // seeded again by the next build
          return seeded;
        }
      }
      if (m.locked) {
        OCIB_ASSIGN_OR_RETURN(fs::FileLock l, fs::FileLock::acquire(dir + ".lock"));
        locks.push_back(std::move(l));
      }
      sm.type = sandbox::Mount::Type::kBind;
      sm.source = dir;
      sm.readonly = m.cache_readonly;
    } else if (m.type == plan::RunMount::Type::kTmpfs) {
      sm.type = sandbox::Mount::Type::kTmpfs;
      sm.tmpfs_size = m.size;
      sm.mode = m.mode ? m.mode : 01777;
    } else if (m.type == plan::RunMount::Type::kBind) {
      // The source is resolved by the sandbox *inside* its root (the stage's merged view, the
      // context): `ln -s / host` in a stage names the stage's own /, never the host's.
      sm.subpath = m.source;
      std::vector<std::string> lowers;
      if (m.from_stage) {
        // Always an overlay with a throwaway upper, read-only unless rw: even a step that may
        // remount it (--security=insecure) cannot write into the stage's snapshots.
        lowers = lowers_of(store_, m.from_top);
        sm.type = sandbox::Mount::Type::kOverlayRw;
      } else {
        const bool main_context = m.context_dir.empty();
        lowers = {main_context ? opts_.context : m.context_dir};
        // .dockerignore'd files (secret.key, .git) are left out of the view, as BuildKit does:
        // an overlay with a layer of whiteouts over them.
        if (main_context && opts_.context_filter.excluded) {
          OCIB_ASSIGN_OR_RETURN(std::optional<std::string> mask,
                                ignore_mask(opts_.context_fd, opts_.context_filter, fs::join(spec.scratch, "ctxmask-" + std::to_string(n++))));
          if (mask) {
            lowers.insert(lowers.begin(), *mask);
            sm.type = sandbox::Mount::Type::kOverlayRw;
          }
        }
      }
      // Writes are discarded with the step; an insecure step could remount a read-only bind of
      // the context rw, so it gets an overlay too.
      if (m.rw || spec.insecure) sm.type = sandbox::Mount::Type::kOverlayRw;
      if (sm.type == sandbox::Mount::Type::kOverlayRw) {
        sm.lowerdirs = lowers;
        sm.readonly = !m.rw;
      } else {
        sm.type = sandbox::Mount::Type::kBind;
        sm.source = lowers.front();
        sm.readonly = true;
      }
    } else if (m.type == plan::RunMount::Type::kSsh) {
      // The agent's own socket, bound at the target; SSH_AUTH_SOCK names the first one (BuildKit).
      auto it = opts_.ssh.find(m.id);
      if (it == opts_.ssh.end()) {
        if (m.required)
          return Error::invalid("no SSH key \"" + m.id + "\" forwarded from the client (give it with --ssh " +
                                (m.id == "default" ? std::string("default") : m.id + "=SOCKET") + ")");
        continue;
      }
      if (std::none_of(env.begin(), env.end(), [](const std::string& e) { return e.rfind("SSH_AUTH_SOCK=", 0) == 0; }))
        env.push_back("SSH_AUTH_SOCK=" + m.target);
      sm.type = sandbox::Mount::Type::kBind;
      sm.source = it->second;
    } else if (m.type == plan::RunMount::Type::kSecret || m.type == plan::RunMount::Type::kPipe) {
      std::string value;
      if (m.type == plan::RunMount::Type::kPipe) {
        value = m.source;
      } else {
        auto it = opts_.secrets.find(m.id);
        if (it == opts_.secrets.end()) {
          if (m.required) return Error::invalid("secret " + m.id + ": not found (required; give it with --secret id=" + m.id + ",src=FILE)");
          continue;
        }
        if (!it->second.env.empty()) {
          const char* v = std::getenv(it->second.env.c_str());
          if (!v) return Error::invalid("secret " + m.id + ": environment variable " + it->second.env + " is not set");
          value = v;
        } else {
          OCIB_ASSIGN_OR_RETURN(value, fs::read_file(it->second.file));
        }
        if (!m.env.empty()) env.push_back(m.env + "=" + value);
        if (m.target.empty()) continue;
      }
      mode_t mode = m.type == plan::RunMount::Type::kPipe ? 0555 : (m.mode ? m.mode : 0400);
      // As BuildKit: 0400, owned by uid/gid (root by default); a non-root step reads it only
      // when given uid= or mode=.
      // In a tmpfs of the step's own mount namespace: never on disk, gone with the step.
      sm.type = sandbox::Mount::Type::kData;
      sm.data = std::move(value);
      sm.mode = mode;
      sm.chown_uid = m.uid.value_or(0);
      sm.chown_gid = m.gid.value_or(0);
      sm.readonly = true;
    }
    spec.mounts.push_back(sm);
  }
  return {};
}

Status Solver::execute() {
  mark_exported();
  // The shared default network starts while the first steps run (a COPY, a base layer) when a
  // RUN with it will run: not found in the cache under its planned key, or the cache ignored.
  // Steps keyed by content at run time are left out (their planned key says nothing), so a
  // no-op rebuild starts no network stack. The future waits for it before execute returns.
  std::future<void> network;
  if (std::any_of(plan_.steps.begin(), plan_.steps.end(), [this](const plan::Step& s) {
        if (s.kind != plan::Step::Kind::kRun || s.network != plan::Network::kDefault) return false;
        if (std::any_of(s.key_inputs.begin(), s.key_inputs.end(), [](const auto& in) { return in.content; })) return false;
        return ignores_cache(s) || !usable_cache_entry(s.key);
      }))
    network = std::async(std::launch::async, [this] { sandbox::prepare_default_network(ids_); });
  base_downloads_ = static_cast<size_t>(std::count_if(plan_.steps.begin(), plan_.steps.end(), [this](const plan::Step& s) {
    return s.kind == plan::Step::Kind::kBase && !s.pull_from.empty() && !store_.has_snapshot(s.result.snapshot) &&
           !store_.has_blob(s.result.digest);
  }));
  plan::Step* top = plan_.top();
  std::vector<dag::VertexId> targets;
  // Among ready steps the scheduler starts the one on the longest remaining path; lengths
  // are the durations recorded by earlier builds, or a guess by kind for a step never run.
  Durations durations = Durations::load(store_.root());
  for (auto& s : plan_.steps) {
    dag::Vertex v;
    v.name = s.name;
    // A base layer unpacks into a snapshot of its own: it needs no other layer, so the layers
    // of a base unpack side by side; what is built on a layer waits for every layer below it.
    std::set<const plan::Step*> added;
    auto add = [&](const plan::Step* d) {
      if (added.insert(d).second) v.deps.push_back(d->vid);
    };
    for (plan::Step* d : s.deps) {
      if (s.kind == plan::Step::Kind::kBase && d == s.parent && d->kind == plan::Step::Kind::kBase) continue;
      add(d);
      if (s.kind != plan::Step::Kind::kBase)
        for (const plan::Step* b = d; b && b->kind == plan::Step::Kind::kBase; b = b->parent) add(b);
    }
    plan::Step* sp = &s;
    v.run = [this, sp]() { return run_step(*sp); };
    double guess = s.kind == plan::Step::Kind::kRun ? 1.0 : s.kind == plan::Step::Kind::kBase ? 0.5 : 0.1;
    v.cost = durations.estimate(s.key, s.name).value_or(guess) + 0.001;
    s.vid = graph_.add(std::move(v));
  }
  if (top) targets.push_back(top->vid);
  // A target that is a base image's top layer: its other layers are targets too (they are no
  // longer its dependencies).
  for (const plan::Step* b = top; b && b->kind == plan::Step::Kind::kBase; b = b->parent)
    if (b != top) targets.push_back(b->vid);
  int jobs = opts_.jobs > 0 ? opts_.jobs : std::max(4, static_cast<int>(std::thread::hardware_concurrency()));
  dag::Scheduler sched(jobs, [] { sandbox::cancel_all(); }, slots_);
  Status st = sched.run(graph_, targets, &report_);
  if (!st.ok() && report_.cancelled > 0) st.error().wrap(std::to_string(report_.cancelled) + " cancelled");
  for (const auto& s : plan_.steps) {
    if (s.cached || s.vid >= report_.timings.size() || !report_.timings[s.vid].ran) continue;
    const auto& t = report_.timings[s.vid];
    if (report_.failed != s.vid)  // a failed step's time says nothing about its next run
      durations.record(s.plan_key.empty() ? s.key : s.plan_key, s.name, std::chrono::duration<double>(t.completed - t.started).count());
  }
  durations.save();
  return st;
}

namespace {
// Streaming a download into the unpacking sandbox needs the sandbox's child to hold no copy of
// the pipe's write end (it would never see the end of the stream): true of the namespaced
// sandboxes, which close every descriptor they are not given, not of the chroot rung's plain
// fork. OCIB_STREAM_PULL=0 turns it off (download, then unpack).
bool stream_pulls() {
  static const bool on = [] {
    const char* e = std::getenv("OCIB_STREAM_PULL");
    if (e && std::string(e) == "0") return false;
    auto iso = sandbox::proc_isolation();
    return iso.ok() && iso->namespaces;
  }();
  return on;
}
}  // namespace

Status Solver::run_step(plan::Step& s) {
  // A COPY from a stage digests what it copies while copying, when the digest is not known
  // yet (the stage ran in this build): one sandbox instead of two.
  const bool copy_digests = s.kind == plan::Step::Kind::kCopy &&
                            std::any_of(s.key_inputs.begin(), s.key_inputs.end(), [](const auto& in) { return in.content; });
  bool deferred = false;
  OCIB_TRY(plan::effective_key(s, [&](const plan::Step& from, const std::vector<std::string>& patterns) -> Result<std::string> {
    if (!copy_digests) return stage_digest(from, patterns);
    if (auto known = known_stage_digest(from, patterns)) return *known;
    deferred = true;
    return Error(Errc::kNotFound, "digested while copying");
  }));
  if (deferred) return copy_then_key(s);
  if (s.kind == plan::Step::Kind::kLinked) {
    // The --link layer is ready (a dependency); this vertex only stacks it.
    plan::Step* src = s.link_src;
    s.result.snapshot = src->result.snapshot;
    s.result.created = src->result.created;
    s.cached = src->cached;
    if (src->packed.valid()) {
      std::shared_future<Status> f = src->packed;
      s.packed = std::async(std::launch::async, [&s, src, f]() -> Status {
                   OCIB_TRY(f.get());
                   static_cast<oci::LayerBlob&>(s.result) = src->result;
                   return {};
                 }).share();
    } else {
      s.result = src->result;
    }
    return {};
  }
  OCIB_ASSIGN_OR_RETURN(fs::FileLock lock, store_.lock_key(s.key));
  if (s.kind == plan::Step::Kind::kBase) {
    // A lazily pulled base: the layer is fetched now (verified against its digest and size),
    // when it is to be unpacked or an output needs the blob.
    auto fetch = [&] { return fetch_base(s, images::store_sink(store_)); };
    if (store_.has_snapshot(s.result.snapshot)) {
      if (exported_.count(&s)) OCIB_TRY(fetch());
      s.cached = true;
      reporter_.cached(s.display_id, s.name);
      return {};
    }
    reporter_.started(s.display_id, s.name);
    auto t0 = std::chrono::steady_clock::now();
    const bool stream = base_downloads_ == 1 && !store_.has_blob(s.result.digest) && !s.pull_from.empty() && stream_pulls();
    auto r = stream ? pull_unpacking(s) : [&]() -> Result<plan::LayerResult> {
      OCIB_TRY(fetch());
      return unpack_base(s);
    }();
    if (!r.ok()) {
      reporter_.failed(s.display_id, r.error().message());
      return std::move(r).error().wrap(s.name);
    }
    s.ran = true;
    reporter_.done(s.display_id, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    return {};
  }
  // A step another Solver of this run executed (under the key lock we now hold) is reused
  // even when the cache is ignored: --no-cache runs it again once, not once per target. Its
  // result is as fresh as a run here would be (what builds on it is not taken from an older
  // cache either).
  bool executed_in_run = opts_.executed && opts_.executed->has(s.key);
  bool use_cache = executed_in_run || may_use_cache(s);
  s.fresh = !use_cache || executed_in_run;
  if (use_cache) {
    OCIB_ASSIGN_OR_RETURN(bool hit, take_cached(s));
    if (hit) return {};
  }
  reporter_.started(s.display_id, s.name);
  auto t0 = std::chrono::steady_clock::now();
  auto r = execute_step(s);
  if (!r.ok()) return step_failed(s, std::move(r).error());
  return record_run(s, *r, t0);
}

std::optional<store::CacheEntry> Solver::usable_cache_entry(const std::string& key) const {
  auto hit = store_.cache_get(key);
  if (hit && !store_.has_snapshot(hit->snapshot)) hit.reset();  // no hit without its snapshot
  return hit;
}

Result<bool> Solver::take_cached(plan::Step& s) {
  if (auto hit = usable_cache_entry(s.key)) {
    s.result = {};
    s.result.snapshot = hit->snapshot;
    s.result.created = hit->created;
    // Blobs are kept per compression: a zstd build after a gzip one packs again.
    if (auto e = hit->blobs.find(blob_variant()); e != hit->blobs.end()) static_cast<oci::LayerBlob&>(s.result) = e->second;
    s.cached = true;
    if ((s.result.digest.empty() || !store_.has_blob(s.result.digest)) && exported_.count(&s)) start_pack(s);
    reporter_.cached(s.display_id, s.name);
    return true;
  }
  if (imported_cache_.empty()) return false;
  OCIB_ASSIGN_OR_RETURN(bool hit, try_imported_cache(s));
  if (hit) reporter_.cached(s.display_id, s.name + " (imported cache)");
  return hit;
}

Error Solver::step_failed(const plan::Step& s, Error e) {
  reporter_.failed(s.display_id, e.message());
  if (!e.loc() && s.loc.line > 0) e.with_loc(s.loc);  // as BuildKit's source map: the failing line
  return e.wrap(s.name);
}

Status Solver::record_run(plan::Step& s, const plan::LayerResult& r, std::chrono::steady_clock::time_point t0) {
  s.result = r;
  s.ran = true;
  OCIB_TRY(store_.cache_put(s.key, cache_entry(s)));
  if (opts_.executed) opts_.executed->add(s.key);
  if (exported_.count(&s)) start_pack(s);
  reporter_.done(s.display_id, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return {};
}

bool Solver::may_use_cache(const plan::Step& s) const {
  // A dependency that ran without the cache taints what is built on it, unless it is only
  // read by content (COPY --from, a bind from a stage): then the key holds what it produced.
  auto by_content_only = [&s](const plan::Step* d) {
    bool content = false, key = d == s.parent;
    for (const auto& in : s.key_inputs) (in.content ? content : key) |= in.step == d;
    return content && !key;
  };
  return !ignores_cache(s) && std::none_of(s.deps.begin(), s.deps.end(), [&](const plan::Step* d) {
           return d->fresh && !by_content_only(d);
         });
}

Status Solver::copy_then_key(plan::Step& s) {
  bool use_cache = may_use_cache(s);
  auto t0 = std::chrono::steady_clock::now();
  std::string digest;
  auto r = execute_step(s, &digest);
  if (!r.ok()) {
    reporter_.started(s.display_id, s.name);
    return step_failed(s, std::move(r).error());
  }
  if (!digest.empty() && s.from_top) remember_stage_digest(*s.from_top, s.copy.sources, digest);
  // Keyed now (the digest is remembered); without one the planned key stays.
  OCIB_TRY(plan::effective_key(s, [this](const plan::Step& from, const std::vector<std::string>& patterns) -> Result<std::string> {
    if (auto known = known_stage_digest(from, patterns)) return *known;
    return Error(Errc::kNotFound, "not digested");
  }));
  OCIB_ASSIGN_OR_RETURN(fs::FileLock lock, store_.lock_key(s.key));
  // As in run_step: what another Solver of this run made under this key is reused.
  const bool executed_in_run = opts_.executed && opts_.executed->has(s.key);
  s.fresh = !use_cache || executed_in_run;
  use_cache = use_cache || executed_in_run;
  if (use_cache) {
    // The same files as an earlier build copied: its result stays (and with it its layer and
    // everything cached on it); this run's copy goes.
    OCIB_ASSIGN_OR_RETURN(bool hit, take_cached(s));
    if (hit) {
      if (Status gone = sandbox::remove_tree(store_.snapshot_path(r->snapshot), ids_); !gone.ok())
        log::warn("could not remove " + store_.snapshot_path(r->snapshot) + ": " + gone.error().str());
      return {};
    }
  }
  reporter_.started(s.display_id, s.name);
  return record_run(s, *r, t0);
}

// The recorded blobs of a step differ by compression and by the SOURCE_DATE_EPOCH their file
// times were clamped to: a clamped build never reuses an unclamped blob, nor the reverse.
std::string Solver::blob_variant() const {
  std::string v = compression_name(opts_.compression);
  if (opts_.source_date_epoch) v += "@epoch=" + std::to_string(*opts_.source_date_epoch);
  return v;
}

store::CacheEntry Solver::cache_entry(const plan::Step& s) const {
  const plan::LayerResult& r = s.result;
  store::CacheEntry entry;
  entry.snapshot = r.snapshot;
  entry.created = r.created;
  entry.name = s.name;
  // Keep blobs of other compressions recorded by earlier builds of the same snapshot (a step
  // that ran again, --no-cache, made a new one: the old blobs hold the old files).
  if (auto old = store_.cache_get(s.key); old && old->snapshot == r.snapshot) entry.blobs = old->blobs;
  if (!r.digest.empty()) entry.blobs[blob_variant()] = r;
  return entry;
}

// Only the layers an output needs are packed as their steps commit (BuildKit compresses at
// export): the target's chain. The packing threads run at idle priority (SCHED_IDLE), so on a
// busy machine the build's own steps (a compiler) come first and packing takes only idle CPU;
// the export waits for what is left. Other steps are packed when something asks for them
// (--cache-to mode=max), from their snapshots.
Solver::~Solver() {
  // A failed or interrupted build returns while layers may still be packing; their threads
  // hold `this` and the store, so they finish (the blob lands or its temp file is removed)
  // before either goes away.
  for (const auto& s : plan_.steps)
    if (s.packed.valid()) s.packed.wait();
}

void Solver::start_pack(plan::Step& s) const {
  // A detached thread rather than std::async: an async thread stays unjoined (its stack mapped)
  // until its future is waited for at export, so a build of hundreds of steps kept hundreds of
  // stacks, and every sandbox fork copied their page tables (per-step cost grew with the step
  // count: issue 20).
  auto task = std::make_shared<std::packaged_task<Status()>>([this, &s] {
    // Per thread on Linux; the sandbox and compression threads it starts inherit it.
    run_at_idle_priority();
    return pack_step(s);
  });
  s.packed = task->get_future().share();
  std::thread([task] { (*task)(); }).detach();
}

void Solver::mark_exported() {
  for (const plan::Step* s = plan_.top(); s; s = s->parent) {
    exported_.insert(s);
    if (s->link_src) exported_.insert(s->link_src);
  }
}

// A new cache directory of `RUN --mount=type=cache,from=STAGE,source=PATH` starts as a copy of
// PATH in the stage (BuildKit). The copy runs in a sandbox of its own, where the files' owners
// are mapped, from a read-only view of the stage into the cache bound at /cache.
Status Solver::seed_cache(const std::string& dir, const plan::RunMount& m, const std::string& scratch) const {
  sandbox::Spec spec;
  spec.scratch = fs::join(scratch, "seed");
  spec.upperdir = fs::join(scratch, "seed-upper");
  OCIB_TRY(fs::mkdirs(spec.upperdir, 0755));
  sandbox::ReadOnlyView view;
  view.layers = lowers_of(store_, m.from_top);
  spec.views = {view};
  sandbox::Mount cache;
  cache.type = sandbox::Mount::Type::kBind;
  cache.source = dir;
  cache.target = "/cache";
  spec.mounts = {cache};
  spec.etc_files = false;
  copy::CopyOp op;
  op.sources = {m.source.empty() ? "." : m.source};
  op.dest = "/cache/";
  op.preserve_owner = true;
  auto done = run_function(spec, ids_, reporter_, 0, [op](const std::vector<int>& fds) -> Result<std::string> {
    OCIB_TRY(copy::copy_into(fds.at(0), op));
    return std::string();
  });
  if (!done.ok()) return std::move(done).error().wrap("seeding cache mount " + m.target + " from its stage");
  return {};
}

std::string Solver::stage_digest_memo(const plan::Step& from, const std::vector<std::string>& patterns) const {
  // Snapshots never change: the digest of the same paths in the same chain is remembered
  // (prune forgets them all when it removes snapshots).
  std::string memo_key;
  for (const plan::Step* p = &from; p; p = p->parent) memo_key += p->result.snapshot + "\n";
  for (const auto& p : patterns) memo_key += std::string(1, '\0') + p;
  return fs::join(store_.root(), "contenthash/" + Sha256::hex(memo_key));
}

std::optional<std::string> Solver::known_stage_digest(const plan::Step& from, const std::vector<std::string>& patterns) const {
  // Base layers only: the key already is the digest of their content.
  bool only_base = true;
  for (const plan::Step* p = &from; p; p = p->parent) only_base = only_base && p->kind == plan::Step::Kind::kBase;
  if (only_base) return "layers:" + from.key;
  if (auto known = fs::read_file(stage_digest_memo(from, patterns)); known.ok() && known->size() == 64) return *known;
  return std::nullopt;
}

Result<std::string> Solver::stage_digest(const plan::Step& from, const std::vector<std::string>& patterns) const {
  if (auto known = known_stage_digest(from, patterns)) return *known;
  OCIB_ASSIGN_OR_RETURN(std::string upper, store_.make_tmp_dir("up-"));
  Staging upper_guard(upper, ids_);
  OCIB_ASSIGN_OR_RETURN(std::string scratch, store_.make_tmp_dir("run-"));
  Staging scratch_guard(scratch, ids_);
  sandbox::Spec spec;
  spec.upperdir = upper;
  spec.scratch = scratch;
  spec.etc_files = false;
  sandbox::ReadOnlyView view;
  view.layers = lowers_of(store_, &from);
  spec.views = {view};
  auto digest = run_function(spec, ids_, reporter_, 0, [patterns](const std::vector<int>& fds) -> Result<std::string> {
    copy::SourceFilter f;
    f.owners = true;
    return copy::hash_sources(fds.at(0), patterns, f);
  });
  if (!digest.ok()) return std::move(digest).error();
  remember_stage_digest(from, patterns, *digest);
  return *digest;
}

void Solver::remember_stage_digest(const plan::Step& from, const std::vector<std::string>& patterns,
                                   const std::string& digest) const {
  // Best effort: a digest not remembered is taken again by the next build.
  std::string memo = stage_digest_memo(from, patterns);
  if (fs::mkdirs(fs::dirname(memo), 0755).ok()) (void)fs::write_file_atomic(memo, digest);
}

Result<std::string> Solver::in_image_view(const plan::Step* top,
                                          std::function<Result<std::string>(int root_fd)> fn) const {
  OCIB_ASSIGN_OR_RETURN(std::string upper, store_.make_tmp_dir("up-"));
  Staging upper_guard(upper, ids_);
  OCIB_ASSIGN_OR_RETURN(std::string scratch, store_.make_tmp_dir("run-"));
  Staging scratch_guard(scratch, ids_);
  sandbox::Spec spec;
  spec.upperdir = upper;
  spec.scratch = scratch;
  spec.etc_files = false;
  sandbox::ReadOnlyView view;
  view.layers = lowers_of(store_, top);
  spec.views = {view};
  return run_function(spec, ids_, reporter_, 0,
                      [fn = std::move(fn)](const std::vector<int>& fds) -> Result<std::string> { return fn(fds.at(0)); });
}

// Packs a committed snapshot into a layer blob and records it in the cache entry.
Status Solver::pack_step(plan::Step& s) const {
  static std::counting_semaphore<64> slots(std::max(1u, std::thread::hardware_concurrency()));
  slots.acquire();
  struct Release {
    ~Release() { slots.release(); }
  } release;
  auto t0 = std::chrono::steady_clock::now();
  layers::PackOptions po;
  po.ids = &ids_;
  po.clamp_mtime = opts_.source_date_epoch;
  po.compression = opts_.compression;
  po.level = opts_.compression_level;
  std::string blob_tmp = store_.tmp_file_path("layer-");
  OCIB_ASSIGN_OR_RETURN(std::string pack_staging, store_.make_tmp_dir("pack-"));
  Staging pack_guard(pack_staging, ids_);
  auto blob = pack_snapshot(store_.snapshot_path(s.result.snapshot), blob_tmp, po, ids_, pack_staging);
  if (!blob.ok()) {
    ::unlink(blob_tmp.c_str());
    return std::move(blob).error().wrap("packing layer of " + s.name);
  }
  if (store_.has_blob(blob->digest)) {
    ::unlink(blob_tmp.c_str());
  } else {
    OCIB_TRY(store_.adopt_blob(blob_tmp, blob->digest));
  }
  static_cast<oci::LayerBlob&>(s.result) = *blob;
  if (log::debug_enabled())
    log::debug(s.name + ": pack " +
               std::to_string(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count()) + " ms");
  return store_.cache_put(s.key, cache_entry(s));
}

// A lazily pulled base layer's blob into `sink` (verified against its digest and size), unless
// the store has it.
Status Solver::fetch_base(const plan::Step& s, const registry::BlobSink& sink) {
  if (store_.has_blob(s.result.digest)) return {};
  if (s.pull_from.empty()) return Error(Errc::kNotFound, "layer " + s.result.digest + " is not in the store");
  OCIB_ASSIGN_OR_RETURN(registry::Reference ref, registry::Reference::parse(s.pull_from));
  oci::Descriptor d{s.result.media_type, s.result.digest, s.result.size, {}, std::nullopt};
  return client_.pull_blob(ref, d, sink);
}

Result<plan::LayerResult> Solver::pull_unpacking(plan::Step& s) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return Error::from_errno("pipe", errno);
  UniqueFd rd(p[0]);
  int wfd = p[1];
  (void)::fcntl(wfd, F_SETPIPE_SZ, 1 << 20);  // best effort: fewer wake-ups on both sides
  bool stream_cut = false;  // the unpack did not get the whole blob from the pipe
  int64_t streamed = 0;     // bytes written into the pipe
  auto cut = [&] {
    if (wfd >= 0) ::close(wfd);
    wfd = -1;
  };
  // tee and restart run on the download thread only.
  registry::BlobSink sink = images::store_sink(store_);
  sink.tee = [&](std::string_view data) {
    for (const char* q = data.data(); wfd >= 0 && q < data.data() + data.size();) {
      ssize_t n = ::write(wfd, q, static_cast<size_t>(data.data() + data.size() - q));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {  // EPIPE: the unpack ended before the blob did
        stream_cut = true;
        cut();
        return;
      }
      q += n;
      streamed += n;
    }
  };
  sink.restart = [&] {
    stream_cut = true;
    cut();
  };
  Status fetched;
  std::thread download([&] {
    // A write to the pipe after the unpack ended raises SIGPIPE on this thread: blocked here
    // (EPIPE instead), and a pending one taken before the thread ends.
    sigset_t pipe_sig;
    sigemptyset(&pipe_sig);
    sigaddset(&pipe_sig, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_sig, nullptr);
    fetched = fetch_base(s, sink);
    cut();
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_sig, nullptr, &zero) > 0) {
    }
  });
  bool joined = false;
  auto finish_download = [&]() -> Status {
    if (!joined) {
      rd.reset();  // the download can no longer block on a pipe nobody reads
      download.join();
      joined = true;
    }
    return fetched;
  };
  auto r = unpack_base(s, rd.get(), finish_download);
  Status got = finish_download();
  // The download's own failure comes first: what the unpack saw of it says less.
  if (!got.ok()) return std::move(got).error();
  if (r.ok()) {
    log::debug(s.name + ": unpacked while downloading");
    return r;
  }
  // The whole blob went through the pipe: the layer itself is bad. Otherwise (a restarted
  // download, or the blob stored meanwhile by another process, so nothing was downloaded) the
  // blob in the store is unpacked.
  if (!stream_cut && streamed == s.result.size) return r;
  log::debug(s.name + ": the pipe did not carry the whole blob; unpacking again from the blob");
  return unpack_base(s);
}

// Unpacks a base layer inside a user namespace, so the files get their real container owners
// (subordinate ids) even for an unprivileged caller.
Result<plan::LayerResult> Solver::unpack_base(plan::Step& s, int stream_fd, const std::function<Status()>& before_commit) {
  OCIB_ASSIGN_OR_RETURN(std::string dest, store_.make_tmp_dir("unpack-"));
  Staging dest_guard(dest, ids_);
  OCIB_ASSIGN_OR_RETURN(std::string upper, store_.make_tmp_dir("up-"));
  Staging upper_guard(upper, ids_);
  OCIB_ASSIGN_OR_RETURN(std::string scratch, store_.make_tmp_dir("run-"));
  Staging scratch_guard(scratch, ids_);
  sandbox::Spec spec;
  spec.upperdir = upper;
  spec.scratch = scratch;
  std::string blob = store_.blob_path(s.result.digest);
  const bool streamed = stream_fd >= 0;
  if (streamed) {
    spec.host_dirs = {dest};
    spec.pass_fds = {stream_fd};
  } else {
    spec.host_dirs = {fs::dirname(blob), dest};
  }
  std::string hex = fs::basename(blob);
  std::string diff_id = s.result.diff_id;
  std::string layer = s.result.digest;
  // The unpack's result is what it refused (told as a warning); its own output is step output.
  auto refused = run_function(spec, ids_, reporter_, s.display_id,
                              [hex, diff_id, layer, streamed](const std::vector<int>& fds) -> Result<std::string> {
                                layers::UnpackOptions uo;
                                uo.expected_diff_id = diff_id;
                                std::string src = streamed ? "/proc/self/fd/" + std::to_string(fds.at(1))
                                                           : "/proc/self/fd/" + std::to_string(fds.at(0)) + "/" + hex;
                                auto r = layers::unpack_layer(src, "/proc/self/fd/" + std::to_string(fds.at(streamed ? 0 : 1)), uo);
                                if (!r.ok()) return std::move(r).error();
                                return layers::refused_summary(*r, layer);
                              });
  if (!refused.ok()) return std::move(refused).error().wrap("unpacking layer " + s.result.digest);
  if (before_commit) OCIB_TRY(before_commit());
  if (!refused->empty()) reporter_.note("warning: " + *refused);
  OCIB_TRY(store_.commit_snapshot(dest_guard.release(), s.result.snapshot));
  return s.result;
}


// --cache-from (cache_io.cc reads the sources): the imported records are looked up by key in
// run_step after the store's own cache; a hit brings the blob into the store (from a cache
// directory, or lazily from the registry) and unpacks it into the step's snapshot, so the
// step need not run.
Status Solver::load_cache_imports() {
  for (const auto& from : opts_.cache_from) {
    Status got = cache::import_cache(from, store_, client_, plan_.platform,
                                     [this](const std::string& m) { reporter_.note(m); }, imported_cache_);
    if (!got.ok() && from.get("ignore-error") == "true") {
      reporter_.note("warning: --cache-from type=" + from.type + " unusable (ignore-error=true): " + got.error().str());
      continue;
    }
    OCIB_TRY(got);
  }
  return {};
}

bool Solver::ignores_cache(const plan::Step& s) const {
  if (opts_.no_cache) return true;
  if (opts_.no_cache_filter.empty()) return false;
  // The stage as the Dockerfile names it (a multi-platform build prefixes "PLATFORM ").
  std::string name = s.stage.substr(s.stage.rfind(' ') + 1);
  for (const auto& f : opts_.no_cache_filter)
    if (ascii_lower(f) == ascii_lower(name)) return true;
  return false;
}

Result<bool> Solver::try_imported_cache(plan::Step& s) {
  auto it = imported_cache_.find(s.key);
  if (it == imported_cache_.end() || s.kind == plan::Step::Kind::kBase || s.kind == plan::Step::Kind::kLinked) return false;
  const cache::CacheRecord& r = it->second.record;
  if (Status got = cache::fetch_cache_blob(it->second, store_, client_); !got.ok()) {
    // A blob that went away (a pruned registry, a partial cache directory) is a miss; one that
    // does not match its digest fails the build.
    if (got.error().code() == Errc::kCorrupt || got.error().code() == Errc::kSecurity) return std::move(got).error();
    reporter_.note("warning: imported cache for " + s.name + " unusable, running it: " + got.error().message());
    return false;
  }
  s.result.snapshot = s.key.substr(0, 20);
  static_cast<oci::LayerBlob&>(s.result) = r;
  s.result.created = r.created;
  if (!store_.has_snapshot(s.result.snapshot)) {
    auto u = unpack_base(s);
    if (!u.ok()) return std::move(u).error();
  }
  s.cached = true;
  OCIB_TRY(store_.cache_put(s.key, cache_entry(s)));
  return true;
}

Result<cache::CacheRecords> Solver::cache_records(const std::string& mode) const {
  std::set<const plan::Step*> chosen;
  if (mode == "max") {
    for (const auto& s : plan_.steps)
      if (s.kind != plan::Step::Kind::kBase && s.kind != plan::Step::Kind::kLinked && (s.ran || s.cached)) chosen.insert(&s);
  } else {
    for (const plan::Step* s = plan_.top(); s; s = s->parent) {
      const plan::Step* layer = s->kind == plan::Step::Kind::kLinked ? s->link_src : s;  // under the --link key
      if (layer->kind != plan::Step::Kind::kBase) chosen.insert(layer);
    }
  }
  // Steps nothing packed yet (not in the target's chain) are packed now, all at once.
  for (auto& s : plan_.steps)
    if (chosen.count(&s) && !s.packed.valid() && (s.result.digest.empty() || !store_.has_blob(s.result.digest)))
      start_pack(s);
  cache::CacheRecords out;
  for (const plan::Step* s : chosen) {
    if (s->packed.valid()) OCIB_TRY(s->packed.get());
    if (s->result.digest.empty()) continue;
    out[s->key] = {s->result, s->result.created, s->name};
  }
  return out;
}

Result<plan::LayerResult> Solver::execute_step(plan::Step& s, std::string* digest) {
  OCIB_ASSIGN_OR_RETURN(std::string upper, store_.make_tmp_dir("up-"));
  Staging upper_guard(upper, ids_);
  OCIB_ASSIGN_OR_RETURN(std::string scratch, store_.make_tmp_dir("run-"));
  Staging scratch_guard(scratch, ids_);

  sandbox::Spec spec;
  SandboxFunction fn;  // COPY, WORKDIR: ocib's own work in the sandbox; RUN: spec.argv
  std::vector<fs::FileLock> mount_locks;  // cache mounts with sharing=locked
  spec.lowerdirs = lowers_of(store_, s.parent);
  spec.upperdir = upper;
  spec.scratch = scratch;
  spec.network = s.network == plan::Network::kHost ? sandbox::Network::kHost
                 : s.network == plan::Network::kDefault ? sandbox::Network::kDefault
                                                         : sandbox::Network::kNone;
  if (s.network == plan::Network::kDefault) {
    static std::once_flag said;
    std::string why = sandbox::network_stack_unavailable();
    if (!why.empty())
      std::call_once(said, [&] {
        log::warn("RUN network: " + why + "; RUN steps use the host's network instead of a network namespace of their own");
      });
  }
  if (!s.hostname.empty()) spec.hostname = s.hostname;
  spec.extra_hosts = s.extra_hosts;
  spec.shm_size = s.shm_size;
  for (const auto& u : s.ulimits) spec.ulimits.push_back({u.resource, u.soft, u.hard});
  if (s.kind == plan::Step::Kind::kRun) {
    if (s.emulated) OCIB_TRY(check_emulation(*s.emulated));
    OCIB_ASSIGN_OR_RETURN(auto ids, resolve_user(spec.lowerdirs, s.user));
    spec.uid = ids.first;
    spec.gid = ids.second;
    // Groups outside the user namespace's mapping cannot be set; they are left out.
    for (uint32_t g : supplementary_groups(spec.lowerdirs, s.user, ids.second))
      if (ids_.container_to_host_gid(g)) spec.groups.push_back(g);
    spec.argv = s.argv;
    spec.env = s.env;
    // As runc for BuildKit: HOME from the user's /etc/passwd entry ("/" when not listed),
    // unless the environment has one.
    if (std::none_of(spec.env.begin(), spec.env.end(), [](const std::string& e) { return e.rfind("HOME=", 0) == 0; }))
      spec.env.push_back("HOME=" + home_dir(spec.lowerdirs, s.user));
    spec.insecure = s.insecure;
    spec.cwd = s.cwd;
    spec.env.insert(spec.env.end(), s.proxy_env.begin(), s.proxy_env.end());
    OCIB_TRY(add_run_mounts(s, spec, spec.env, mount_locks));
  } else if (s.kind == plan::Step::Kind::kWorkdir) {
    OCIB_ASSIGN_OR_RETURN(auto ids, resolve_chown(spec.lowerdirs, s.user));
    std::string dir = s.workdir;
    fn = [dir, ids](const std::vector<int>&) -> Result<std::string> {
      OCIB_TRY(copy::make_workdir(dir, ids.first, ids.second));
      return std::string();
    };
  } else {
    copy::CopyOp op = s.copy;
    if (s.from_context && s.expected_sources) {
      OCIB_ASSIGN_OR_RETURN(op.expected, s.expected_sources());
    }
    if (!s.chown_spec.empty()) {
      OCIB_ASSIGN_OR_RETURN(auto ids, resolve_chown(s.user_from ? lowers_of(store_, s.user_from) : spec.lowerdirs, s.chown_spec));
      op.uid = ids.first;
      op.gid = ids.second;
    }
    if (s.from_context) {
      spec.host_dirs = {s.context_dir.empty() ? opts_.context : s.context_dir};
    } else {
      // From a stage or an image the files keep their owners unless --chown says otherwise;
      // a local context's are root's (BuildKit resets them when it receives the context).
      op.preserve_owner = true;
      sandbox::ReadOnlyView view;
      view.layers = lowers_of(store_, s.from_top);
      spec.views = {view};
    }
    const bool digest_sources = digest && !s.from_context;
    fn = [op, digest_sources](const std::vector<int>& fds) -> Result<std::string> {
      std::string d;
      if (digest_sources) {
        // What stage_digest would give; a source it cannot digest fails in copy_into's words.
        copy::SourceFilter f;
        f.owners = true;
        if (auto h = copy::hash_sources(fds.at(0), op.sources, f); h.ok()) d = *h;
      }
      OCIB_TRY(copy::copy_into(fds.at(0), op));
      return d;
    };
  }

  auto t_run = std::chrono::steady_clock::now();
  if (fn) {
    auto done = run_function(spec, ids_, reporter_, s.display_id, std::move(fn));
    if (done.ok() && digest) *digest = *done;
    if (!done.ok()) {
      // The copy's own error, code kept (a changed context is kCorrupt); a Dockerfile-level
      // refusal found only now is a failed step, not a usage error.
      Errc code = done.error().code() == Errc::kInvalidArgument ? Errc::kFailedStep : done.error().code();
      return Error(code, "copy failed: " + done.error().message());
    }
  }
  SandboxRun run;
  if (!fn) {
    OCIB_ASSIGN_OR_RETURN(run, run_reported(spec, ids_, reporter_, s.display_id));
  }
  auto t_ran = std::chrono::steady_clock::now();
  const sandbox::Outcome* outcome = &run.outcome;
  if (!fn && outcome->exit_code != 0) {
    std::string proc;
    for (const auto& a : s.argv) proc += (proc.empty() ? "" : " ") + a;
    std::string how = outcome->signal ? "killed by signal " + std::to_string(outcome->signal)
                                      : "exit code: " + std::to_string(outcome->exit_code);
    return Error(Errc::kFailedStep, "process \"" + proc + "\" did not complete successfully: " + how)
        .with_exit_code(outcome->exit_code);
  }

  if (log::debug_enabled())
    log::debug(s.name + ": sandbox " +
               std::to_string(std::chrono::duration<double, std::milli>(t_ran - t_run).count()) + " ms");
  plan::LayerResult res;
  res.snapshot = s.key.substr(0, 20);
  if (store_.has_snapshot(res.snapshot)) {
    // Re-executed (--no-cache): keep the fresh result under a new id; the old snapshot may be a
    // lowerdir of another running build and is left for prune.
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    char suffix[17];
    std::snprintf(suffix, sizeof suffix, "%016llx", static_cast<unsigned long long>(rng()));
    res.snapshot = s.key.substr(0, 12) + std::string(suffix).substr(0, 12);
  }
  OCIB_TRY(store_.commit_snapshot(upper_guard.release(), res.snapshot));
  res.created = opts_.source_date_epoch ? *opts_.source_date_epoch
                                   : static_cast<int64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                         std::chrono::system_clock::now().time_since_epoch()).count());
  return res;
}

}  // namespace ocib::solver
