#pragma once
// The solver (BuildKit's solver/ops): runs a Plan's steps on the store, concurrently as their
// inputs become ready, through the content-addressed cache (the store's, then --cache-from),
// each RUN/COPY/WORKDIR in the sandbox; packs each committed snapshot into a layer blob off the
// critical path.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/fs.h"
#include "base/idmap.h"
#include "base/spec.h"
#include "cache/cache_io.h"
#include "copy/copy.h"
#include "dag/scheduler.h"
#include "layers/layers.h"
#include "plan/plan.h"
#include "progress/progress.h"
#include "registry/registry.h"
#include "sandbox/sandbox.h"
#include "store/store.h"

namespace ocib::solver {

namespace flatten {
class Flattener;
}

/// --secret id=ID,src=FILE | id=ID,env=VAR: where a secret's value comes from.
struct Secret {
  std::string file;  // read at use time
  std::string env;   // or: from this environment variable
};

/// The keys the Solvers of one run have executed (shared by them): a step that several
/// platforms or bake targets share runs once even with --no-cache, the others reuse it.
struct ExecutedKeys {
  bool has(const std::string& key) const {
    std::lock_guard<std::mutex> lk(mu);
    return keys.count(key) > 0;
  }
  void add(const std::string& key) {
    std::lock_guard<std::mutex> lk(mu);
    keys.insert(key);
  }
  mutable std::mutex mu;
  std::set<std::string> keys;
};

struct Options {
  std::string context;  // real path of the build context directory
  int context_fd = -1;
  copy::SourceFilter context_filter;  // .dockerignore
  std::map<std::string, Secret> secrets;
  /// --ssh ID=SOCKET: the agent sockets RUN --mount=type=ssh,id=ID binds (never in a layer or key).
  std::map<std::string, std::string> ssh;
  bool no_cache = false;
  std::vector<std::string> no_cache_filter;  // stage names whose steps ignore the cache
  std::vector<TypedSpec> cache_from;
  int jobs = 0;  // 0 = default
  layers::Compression compression = layers::Compression::kGzip;
  int compression_level = -1;
  std::optional<int64_t> source_date_epoch;
  std::shared_ptr<ExecutedKeys> executed;  // may be null
};

/// "gzip", "zstd", "uncompressed": the name blobs of a compression are recorded under.
std::string compression_name(layers::Compression c);

class Solver {
 public:
  /// `slots` (may be null) bounds the jobs of several Solvers running at once.
  Solver(const Options& opts, store::Store& st, progress::Reporter& reporter, const IdMapping& ids,
         plan::Plan& plan, registry::Client& client, std::shared_ptr<dag::JobSlots> slots);
  /// Waits for the packing threads it started: they use the Solver and the store.
  ~Solver();
  Solver(const Solver&) = delete;
  Solver& operator=(const Solver&) = delete;

  /// Reads the --cache-from sources.
  Status load_cache_imports();
  /// Runs every step the plan's target needs; records step durations for the next build.
  Status execute();
  /// The records --cache-to exports: the target image's layers (min) or every step that ran
  /// or was cached (max). Waits for their packing.
  Result<cache::CacheRecords> cache_records(const std::string& mode) const;
  /// When each step ran (indexed by Step::vid).
  const dag::Report& report() const { return report_; }
  const plan::Plan& plan() const { return plan_; }
  /// Runs `fn` in a sandbox of its own over a read-only merged view of step `top`'s image (the
  /// view's root as an O_PATH directory fd; owners mapped as in the build, so an unprivileged
  /// build reads its subordinate ids' files) and returns its payload (the SBOM scan).
  Result<std::string> in_image_view(const plan::Step* top, std::function<Result<std::string>(int root_fd)> fn) const;

 private:
  Status run_step(plan::Step& s);
  /// Runs the step in the sandbox and commits its snapshot. For a COPY from a stage,
  /// `digest` (if given) receives the digest of the files it copied (stage_digest's), taken in
  /// the same sandbox; "" when they could not be digested.
  Result<plan::LayerResult> execute_step(plan::Step& s, std::string* digest = nullptr);
  /// A COPY from a stage whose files' digest is not known yet: it copies and digests in one
  /// sandbox, then takes its run-time key and looks it up; a hit keeps the cached result.
  Status copy_then_key(plan::Step& s);
  bool may_use_cache(const plan::Step& s) const;
  /// The step's result from the store's cache (its snapshot still there) or the imported one,
  /// reported as cached; false on a miss.
  Result<bool> take_cached(plan::Step& s);
  /// A failed step: reported, located at its Dockerfile line, named.
  Error step_failed(const plan::Step& s, Error e);
  /// A step that ran: its result recorded in the cache, packed if an output needs it, reported.
  Status record_run(plan::Step& s, const plan::LayerResult& r, std::chrono::steady_clock::time_point t0);
  /// A base layer's blob (in the store) into its snapshot. `stream_fd` >= 0: the blob's bytes
  /// are read from that pipe instead, and `before_commit` (the download's verdict) decides
  /// whether the snapshot is kept.
  Result<plan::LayerResult> unpack_base(plan::Step& s, int stream_fd = -1,
                                        const std::function<Status()>& before_commit = {});
  Status fetch_base(const plan::Step& s, const registry::BlobSink& sink);
  /// A base layer not in the store, downloaded and unpacked at once (the bytes go to the blob
  /// file and, through a pipe, to the unpacking sandbox as they arrive).
  Result<plan::LayerResult> pull_unpacking(plan::Step& s);
  Status add_run_mounts(const plan::Step& s, sandbox::Spec& spec, std::vector<std::string>& env,
                        std::vector<fs::FileLock>& locks);
  void start_pack(plan::Step& s) const;
  Status pack_step(plan::Step& s) const;
  void mark_exported();
  store::CacheEntry cache_entry(const plan::Step& s) const;
  /// The store's cache entry for `key` when its snapshot is still there.
  std::optional<store::CacheEntry> usable_cache_entry(const std::string& key) const;
  std::string blob_variant() const;
  Status seed_cache(const std::string& dir, const plan::RunMount& m, const std::string& scratch) const;
  Result<bool> try_imported_cache(plan::Step& s);
  /// plan::ContentDigest: the files matching `patterns` in step `from`'s image, digested in a
  /// sandbox (owners as the image has them); remembered per snapshot chain in the store.
  Result<std::string> stage_digest(const plan::Step& from, const std::vector<std::string>& patterns) const;
  /// The digest stage_digest would give when it needs no sandbox (base layers only, or
  /// remembered); and where it is remembered.
  std::optional<std::string> known_stage_digest(const plan::Step& from, const std::vector<std::string>& patterns) const;
  std::string stage_digest_memo(const plan::Step& from, const std::vector<std::string>& patterns) const;
  void remember_stage_digest(const plan::Step& from, const std::vector<std::string>& patterns,
                             const std::string& digest) const;
  bool ignores_cache(const plan::Step& s) const;

  const Options& opts_;
  store::Store& store_;
  progress::Reporter& reporter_;
  const IdMapping& ids_;
  plan::Plan& plan_;
  registry::Client& client_;
  std::shared_ptr<dag::JobSlots> slots_;
  std::map<std::string, cache::ImportedRecord> imported_cache_;
  /// Base layers this build must download (no snapshot, no blob): one alone is unpacked while
  /// it downloads (pull_unpacking); several already overlap, one downloading while another
  /// unpacks, and streaming them all at once measured slower.
  size_t base_downloads_ = 0;
  std::set<const plan::Step*> exported_;  // the target's chain: packed as soon as committed
  dag::Graph graph_;
  dag::Report report_;
  std::shared_ptr<flatten::Flattener> flattener_;  // deep chains (flatten.h); lowers_of() uses it
};

}  // namespace ocib::solver
