#pragma once
// The typed middle of a build (BuildKit's LLB): the Dockerfile planned into content-addressed
// steps, each with its cache key and dependencies, and each stage's image config and history.
// The planner (planner.h) writes it; the solver runs it; the exporter turns a stage into an
// image. Nothing here touches the store, the sandbox or the network.

#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "copy/copy.h"
#include "dag/scheduler.h"
#include "oci/image.h"

namespace ocib::plan {

/// Bumped whenever what a cache key stands for changes.
inline constexpr const char* kKeyVersion = "ocib-cache-v1";
/// --build-arg BUILDKIT_SANDBOX_HOSTNAME=NAME sets the RUN steps' hostname, as in BuildKit.
inline constexpr const char* kHostnameArg = "BUILDKIT_SANDBOX_HOSTNAME";

/// A RUN step's network: its own namespace with outbound access (the default), only lo, or the
/// host's.
enum class Network { kDefault, kNone, kHost };

/// What a step produced: its snapshot in the store and, once packed, its layer blob.
struct LayerResult : oci::LayerBlob {
  std::string snapshot;
  int64_t created = 0;  // unix seconds
};

/// A RUN --mount entry, resolved at plan time except for what the store provides.
struct RunMount {
  enum class Type { kBind, kCache, kTmpfs, kSecret, kPipe /* a heredoc script */, kSsh /* --ssh agent */ };
  Type type = Type::kBind;
  std::string target;
  std::string id;             // cache id / secret id / ssh id ("default")
  std::string source;         // bind: path inside the source; pipe: script content
  bool rw = false;
  bool cache_readonly = false;  // type=cache,readonly: mounted read-only
  bool absent = false;          // an optional mount with nothing to mount (type=ssh): left out
  bool required = false;      // secret
  std::string env;            // secret: also (or only) as this environment variable
  uint64_t size = 0;          // tmpfs
  uint32_t mode = 0;          // cache/secret mode, 0 = default
  bool from_context = true;   // bind
  std::string context_dir;    // bind from a named --build-context directory ("" = the context)
  int context_fd = -1;
  struct Step* from_top = nullptr;  // bind from a stage
  bool from_stage = false;
  bool locked = false;        // cache sharing=locked
  std::optional<uint32_t> uid, gid;  // cache (when it is created) / secret owner; default 0
};
/// "bind", "cache", ... as the Dockerfile spells it (also the cache-key spelling).
const char* type_name(RunMount::Type t);

/// A vertex that produces a layer. kBase: a base image's layer (unpacked); kRun, kCopy;
/// kWorkdir: WORKDIR's mkdir; kLinked: a COPY --link layer (made by `link_src`, on an empty
/// root) stacked on `parent`; it runs nothing.
struct Step {
  enum class Kind { kRun, kCopy, kBase, kWorkdir, kLinked };
  Kind kind = Kind::kRun;
  int display_id = 0;
  std::string name;  // "[b1 2/2] RUN sleep 1"
  SourceLoc loc;     // the instruction that made it (a failure names its Dockerfile line)
  std::string stage;
  std::string key;
  Step* parent = nullptr;  // the previous layer of the same image; nullptr: scratch
  std::vector<Step*> deps;

  // RUN
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::string user;
  std::string cwd = "/";
  Network network = Network::kNone;
  /// A RUN for another architecture than the host's: its binaries run through binfmt_misc.
  std::optional<oci::Platform> emulated;
  /// Proxy build args: reach the command but neither the cache key nor the history.
  std::vector<std::string> proxy_env;
  std::vector<RunMount> mounts;
  bool insecure = false;  // RUN --security=insecure (with --allow security.insecure)
  std::string hostname;   // BUILDKIT_SANDBOX_HOSTNAME, "" = the default
  std::vector<std::pair<std::string, std::string>> extra_hosts;  // --add-host
  uint64_t shm_size = 0;                                          // --shm-size
  struct Ulimit {
    std::string text;  // "nofile=1024:2048" as given (the key)
    int resource = 0;  // RLIMIT_*
    int64_t soft = -1, hard = -1;  // -1 = unlimited
  };
  std::vector<Ulimit> ulimits;  // --ulimit

  // COPY
  copy::CopyOp copy;
  /// A COPY from a context directory: when the step runs (never for a cached one), what its
  /// key saw, for copy::CopyOp::expected: the sources digested again with a manifest; an error
  /// (kCorrupt) when they no longer match the key.
  std::function<Result<std::shared_ptr<const copy::SourceManifest>>()> expected_sources;
  std::string chown_spec;  // --chown as written after expansion; resolved at run time
  bool from_context = true;
  std::string context_dir;   // from_context: a named --build-context directory ("" = the context)
  Step* from_top = nullptr;  // top step of the source stage (nullptr: an empty stage)
  Step* user_from = nullptr;  // COPY --link: the image whose /etc/passwd resolves --chown
  Step* link_src = nullptr;   // kLinked

  // WORKDIR
  std::string workdir;

  // kBase: where to fetch the layer blob from when the store lacks it (SourceImage::pull_from).
  std::string pull_from;

  /// How `key` was made, so the solver can make it again from what its inputs turned out to
  /// be (BuildKit's content-based "slow cache"): the key's definition (CBOR), and the places
  /// in it that hold another step's key. A `content` input is a stage read through COPY
  /// --from or RUN --mount=type=bind,from=: at run time its place holds the digest of the
  /// files read (`patterns` in that stage's root) instead of the stage's key, so a stage that
  /// re-ran but produced the same files keeps everything built from them cached. The other
  /// places take the input's run-time key. See effective_key().
  struct KeyInput {
    std::string pointer;  // JSON pointer into the definition ("/parent", "/mounts/2/from")
    Step* step = nullptr;
    std::string prefix;   // put before the value ("stage:")
    bool content = false;
    std::vector<std::string> patterns;  // content: paths read, relative to the stage's root
  };
  std::string key_def;
  std::vector<KeyInput> key_inputs;
  /// The key as planned when the run-time key differs from it ("" = the same).
  std::string plan_key;

  // Written by the solver while it runs the step; read by dependents afterwards.
  dag::VertexId vid = 0;
  LayerResult result;  // kBase: the layer's blob is known at plan time
  bool cached = false;
  bool ran = false;
  /// Ran without asking the cache (--no-cache, --no-cache-filter, or a dependency that did):
  /// its result may differ from what its key recorded, so nothing built on it is served from
  /// the cache either.
  bool fresh = false;
  /// Packing the snapshot into a layer blob runs off the critical path (the next step only
  /// needs the snapshot); export waits for it. Fills result.digest/diff_id/size/media_type.
  std::shared_future<Status> packed;
};

struct HistoryItem {
  std::string created_by;
  Step* step = nullptr;  // the layer it made; nullptr: an empty_layer entry
  std::string created;   // fixed time (history inherited from a base image), else derived
  bool empty_layer = true;
};

struct StageState {
  bool planned = false;
  bool planning = false;
  std::string display;  // "b1" or "stage-2"
  Step* top = nullptr;
  oci::RunConfig config;
  std::vector<HistoryItem> history;
  std::map<std::string, std::string> args;  // ARGs in scope with their values
  /// Every ARG declaration of the stage in order, with its value (none: declared, unset): the
  /// `RUN |N k=v ...` prefix of BuildKit's history.
  std::vector<std::pair<std::string, std::optional<std::string>>> arg_decls;
  std::string base_created;  // `created` of the base image, for images that add no layer
  std::string author;        // MAINTAINER, else the base image's
  oci::Platform platform;    // FROM --platform, the base stage's, else the build's target

  // The stage's shape, for outlines and lint.
  int line = 0;                      // the FROM line
  std::string base;                  // FROM's image reference after expansion; "" for a stage base
  std::string base_digest;           // its manifest digest (a provenance material)
  std::optional<size_t> from_stage;  // FROM <earlier stage>
  /// Stages it reads besides its base: COPY --from and RUN --mount from= (stage index, line).
  std::vector<std::pair<size_t, int>> uses;
  /// The RUN/COPY/ADD steps its own instructions made, one per instruction, in order (a step
  /// may also belong to another stage that made the identical step).
  std::vector<const Step*> own_steps;
};

/// One platform's planned build. Steps point at each other: a Plan moves, never copies.
struct Plan {
  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  Plan(Plan&&) = default;
  Plan& operator=(Plan&&) = default;

  oci::Platform platform;  // the target platform
  std::deque<Step> steps;  // in planning order; dependencies come first
  std::vector<StageState> stages;
  size_t target = 0;  // index into stages
  const StageState& target_stage() const { return stages[target]; }
  const Step* top() const { return stages[target].top; }
  Step* top() { return stages[target].top; }
};

/// The digest of the files matching `patterns` in the root of step `from`'s image (with
/// owners), as the solver reads it from the store.
using ContentDigest = std::function<Result<std::string>(const Step& from, const std::vector<std::string>& patterns)>;

/// Makes `s.key` its run-time key once its inputs have run: the definition with each input's
/// run-time key, and the digest of the files a content input reads (see Step::KeyInput).
/// Unchanged when no input changed and none is read by content. When the content cannot be
/// digested (a path that is not there) the planned key stays: the step runs and fails itself.
Status effective_key(Step& s, const ContentDigest& content);

/// The steps of `plan` as JSON objects (id, name, stage, kind, key, deps, target), appended to
/// `out`: what --print=plan shows.
void describe(const Plan& plan, std::vector<std::string>& out);

}  // namespace ocib::plan
