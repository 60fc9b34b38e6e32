#pragma once
// The build as one call (BuildKit's control.Solve): reads the Dockerfile and context, plans
// each platform (plan/), solves the plans on the store (solver/) and exports the images
// (exporter/). The CLI fills Options from its flags.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/spec.h"
#include "exporter/exporter.h"
#include "oci/image.h"
#include "sandbox/sandbox.h"
#include "solver/solver.h"

namespace ocib::control {

/// One `-o type=...,k=v` output (or a --cache-to / --cache-from spec).
using Output = TypedSpec;

struct Options {
  std::string context;     // build context directory
  std::string dockerfile;  // path; "" = CONTEXT/Dockerfile; "-": dockerfile_text (read from stdin)
  std::string dockerfile_text;  // the Dockerfile when `dockerfile` is "-"
  std::vector<std::pair<std::string, std::string>> extra_hosts;  // --add-host HOST:IP
  uint64_t shm_size = 0;                                          // --shm-size (bytes)
  std::vector<exporter::Annotation> annotations;                  // --annotation
  exporter::AttestOptions attest;                                 // --provenance, --sbom, --attest
  std::vector<plan::Step::Ulimit> ulimits;                         // --ulimit
  std::vector<std::string> tags;
  /// --build-context NAME=DIR|docker-image://REF|oci-layout://DIR[:TAG][@DIGEST]
  std::map<std::string, std::string> build_contexts;
  /// --label K=V: labels set on the image's config (over the Dockerfile's LABELs).
  std::map<std::string, std::string> labels;
  std::string target;      // stage name; "" = last stage
  std::map<std::string, std::string> build_args;
  std::vector<Output> outputs;
  std::string progress = "auto";
  std::string metadata_file;
  std::string timeline_file;  // --timeline FILE.html
  std::string iidfile;
  /// --secret id=ID,src=FILE | id=ID,env=VAR: secret id -> its value source.
  using Secret = solver::Secret;
  std::map<std::string, Secret> secrets;
  /// --ssh default|ID[=SOCKET]: ssh id -> agent socket (default: $SSH_AUTH_SOCK).
  std::map<std::string, std::string> ssh;
  /// --ssh ID=KEY[,KEY...] with private key files: loaded into an agent ocib starts for the
  /// build (ssh_keys.h), forwarded like `ssh`.
  std::map<std::string, std::vector<std::string>> ssh_keys;
  /// --pull: "" (default: re-resolve tags of registry bases), always, missing, never.
  std::string pull;
  /// Registries (host[:port]) that may use plain HTTP or unverified TLS.
  std::vector<std::string> insecure_registries;
  /// registry host -> mirrors tried first, in order (--registry-mirror HOST=MIRROR).
  std::map<std::string, std::vector<std::string>> registry_mirrors;  // --iidfile: the image's config digest, as docker build writes it
  int jobs = 0;            // 0 = default
  bool no_cache = false;
  /// --allow ENTITLEMENT: "security.insecure" lets RUN --security=insecure run; "network.host"
  /// lets RUN use the host's network (for now also allowed without it, with a warning).
  std::vector<std::string> allow;
  /// --no-cache-filter: stages (by name) whose steps ignore the cache and run again.
  std::vector<std::string> no_cache_filter;
  /// --cache-to type=local,dest=DIR | type=registry,ref=REF [,mode=min|max] | type=inline;
  /// --cache-from type=local,src=DIR | type=registry,ref=REF (a cache, or an image with an
  /// inline cache). See cache_io.h.
  std::vector<Output> cache_to;
  std::vector<Output> cache_from;
  /// --network: default (each RUN has its own network namespace with outbound access through
  /// slirp4netns), none (only lo) or host.
  sandbox::Network network = sandbox::Network::kDefault;
  std::string store_root;  // "" = store::Store::default_root()
  /// --platform: the platforms to build, each its own image; more than one makes an image
  /// index. Empty: the host's.
  std::vector<oci::Platform> platforms;
  /// --print=plan: plan only (bases resolved, context hashed) and return the step graph with
  /// each step's cache key in BuildResult::plan; nothing runs, nothing is exported.
  bool plan_only = false;
};

struct BuildResult {
  std::string manifest_digest;
  std::string config_digest;
  std::string image_id;  // what --iidfile holds and -q prints (buildx's image ID)
  std::string plan;  // plan_only: JSON, one object per step (id, name, stage, kind, key, deps)
};

/// Runs a whole build. Errors name the Dockerfile line or the failing step. The composition
/// of the phases below: Session, Build::read, Session::open, Build::plan, Build::make_solvers,
/// solve, Build::export_images.
Result<BuildResult> run(const Options& opts);

/// What several builds share when they run in one process (`ocib bake`'s targets): the
/// reporter, the store (with the gc lock held shared), the id mapping and the registry client.
/// Steps with the same cache key in two builds run once: each step takes the store's per-key
/// flock (one open file description per taker, so it excludes within a process too), and the
/// second finds the first's cache entry.
class Session {
 public:
  /// The reporter only (from `common.progress`); nothing on disk is touched yet.
  explicit Session(const Options& common);
  /// Opens the store, holds the gc lock shared, probes the snapshot driver and isolation (not
  /// for `plan_only`), cleans stale staging, makes the registry client (`common`'s
  /// registries and mirrors).
  Status open(const Options& common);
  progress::Reporter& reporter() { return *reporter_; }
  store::Store& store() { return *store_; }
  const IdMapping& ids() const { return ids_; }
  registry::Client& client() { return *client_; }
  /// The keys this session's solvers executed: a step they share runs once, --no-cache too.
  const std::shared_ptr<solver::ExecutedKeys>& executed() const { return executed_; }

 private:
  std::unique_ptr<progress::Reporter> reporter_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<fs::FileLock> gc_;
  IdMapping ids_;
  std::unique_ptr<registry::Client> client_;
  std::shared_ptr<solver::ExecutedKeys> executed_ = std::make_shared<solver::ExecutedKeys>();
};

/// One build (one Dockerfile, context and set of platforms) in phases, so that several can
/// be solved together on one Session.
class Build {
 public:
  ~Build();
  /// Reads and parses the Dockerfile and .dockerignore and starts the agents of --ssh key
  /// files (no store access). Errors render the Dockerfile line.
  static Result<std::unique_ptr<Build>> read(const Options& opts, Session& session);
  /// Plans every platform (on the Session, which must be open); display ids start after
  /// `id_base`. plan_json() then describes the step graph (--print=plan).
  Status plan(int id_base);
  /// The display ids this build's steps took (the next build's id_base starts after them).
  int steps() const;
  std::vector<plan::Plan>& plans() { return plans_; }
  std::string plan_json() const;
  /// Checks the cache specs and makes one Solver per platform on `slots` (null: a pool of
  /// its own when there are several platforms), reading --cache-from.
  Status make_solvers(std::shared_ptr<dag::JobSlots> slots);
  std::vector<solver::Solver*> solvers() const;
  /// A failed step's error with its Dockerfile line shown, as for parse errors.
  Error located(const Error& e) const;
  /// Makes the images and writes the outputs, tags, metadata, iidfile; `summary`: print the
  /// end-of-build summary (bake prints one for all its builds instead).
  Result<BuildResult> export_images(bool summary = true);
  const Options& options() const { return opts_; }

 private:
  Build(const Options& opts, Session& session);
  struct State;
  Options opts_;
  Session& session_;
  std::unique_ptr<State> st_;
  std::vector<plan::Plan> plans_;
};

/// Executes every build's solvers concurrently (they share the JobSlots given to
/// make_solvers). A failure cancels the rest; the error returned is the first that was not
/// a cancellation, located in its Dockerfile.
Status solve(const std::vector<Build*>& builds);

/// `docker build -` / buildx's "-" context: `data` (stdin) is a tar archive, extracted into
/// `dir` (a new, empty directory) with the archive's names kept beneath it (absolute names,
/// "..", and writes through its own symlinks refused), or else a Dockerfile with an empty
/// context: then `*dockerfile_text` is set and `dir` stays empty.
Status stdin_context(const std::string& data, const std::string& dir, std::string* dockerfile_text);

/// A git URL as buildx takes one for a context (git://, git@, ssh://, github.com/, or an
/// http(s) URL whose path ends in .git; `#REF[:SUBDIR]` after it).
bool is_git_url(const std::string& s);
/// Checks out REF (default: the remote's HEAD) of the URL into `dir` (an empty directory) with
/// git, submodules included and .git removed; returns the context directory (SUBDIR, resolved
/// inside the checkout).
Result<std::string> git_context(const std::string& spec, const std::string& dir);

/// SOURCE_DATE_EPOCH from --build-arg, else the environment; an invalid value is an error.
Result<std::optional<int64_t>> source_date_epoch(const Options& opts);


}  // namespace ocib::control
