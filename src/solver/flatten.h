#pragma once
// Deep snapshot chains. overlayfs stacks at most 500 lower layers (and on kernels before 6.8,
// whose overlay takes its layers in one mount(2) option string, one page of options), and every
// layer adds to a step's mount and to each path lookup in it. Past a depth the bottom of a chain
// is stood in for by a *flattened lower*: one directory holding the merged view of those
// snapshots (sandbox::snapshot::flatten: whiteouts applied, files hardlinked), a store object
// (f/<id>) named by the chain it merges, so every build and process on the store reuses it and
// prune collects it with its chain. Flats are made at depths that are multiples of `every`, each
// from the one below it and the snapshots above that, in the background as soon as a chain
// reaches such a depth, so the steps after it find it ready; synchronously only when a step could
// not be mounted otherwise. Layers and digests do not change: a step's layer is still its own
// upperdir, and the root it runs on shows the same files, owners, modes and times.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/idmap.h"
#include "store/store.h"

namespace ocib::solver {
class Staging;
}

namespace ocib::solver::flatten {

struct Policy {
  bool enabled = true;      // OCIB_FLATTEN=0 turns it off (a chain deeper than the limit fails)
  size_t after = 48;        // OCIB_FLATTEN_AFTER: chains up to this depth are stacked as they are
  size_t every = 16;        // OCIB_FLATTEN_EVERY: flats at depths that are multiples of this
  size_t max_lowers = 500;  // OCIB_FLATTEN_MAX: more lowerdirs than this cannot be mounted

  /// The defaults, the environment's overrides, and `max_lowers` from the kernel: 500 (overlayfs'
  /// stack limit) with the new mount API's one-layer-at-a-time "lowerdir+" (Linux 6.8), else what
  /// fits in a page of mount options with this store's path lengths.
  static Policy for_store(const std::string& root);
};

/// The chain's ids (topmost first) as the lowerdirs to mount: the snapshots above the deepest
/// flat that is ready, then that flat. `ids_at(b)` is the id of the flat of the bottom `b`.
class Flattener {
 public:
  Flattener(const store::Store& st, const IdMapping& ids, Policy policy);
  /// Finishes the flatten in progress; queued ones are dropped.
  ~Flattener();
  Flattener(const Flattener&) = delete;
  Flattener& operator=(const Flattener&) = delete;

  /// Lowerdirs for the snapshot chain `chain` (ids, topmost first), at most policy.max_lowers
  /// of them when a flat can be made; starts the background flatten the chain calls for.
  std::vector<std::string> lowers(const std::vector<std::string>& chain);

  /// Builds the flat of the bottom `depth` snapshots of `chain` now (or waits for the one in
  /// progress); its id. For tests and the synchronous path.
  Result<std::string> make(const std::vector<std::string>& chain, size_t depth);

  const Policy& policy() const { return policy_; }

 private:
  struct Job {
    std::vector<std::string> bottom_up;  // the snapshots it merges, bottom first
    std::string id;
    std::shared_ptr<std::promise<Status>> done;
  };
  std::shared_future<Status> enqueue(std::vector<std::string> bottom_up, const std::string& id, bool front);
  Status build(const std::vector<std::string>& bottom_up, const std::string& id);
  Status build_flat(const std::vector<std::string>& bottom_up, const std::string& id);
  Status commit(Staging& guard, const std::string& dest, const std::vector<std::string>& bottom_up,
                const std::string& id, size_t merged, std::chrono::steady_clock::time_point t0);
  void worker();
  bool failed(const std::string& id);

  store::Store store_;
  IdMapping ids_;
  Policy policy_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  std::map<std::string, std::shared_future<Status>> inflight_;
  std::set<std::string> failed_;  // background flattens that failed
  std::set<std::string> known_;   // flats that exist (made or seen by this process)
  bool stop_ = false;
  std::thread thread_;
};

/// Flat ids of a chain: `out[b]` names the flat of the bottom b snapshots (out[0] empty), a
/// hash over their ids bottom first, so equal chains share flats across builds.
std::vector<std::string> flat_ids(const std::vector<std::string>& bottom_up);

/// The Flattener of store `st` in this process, created by the first caller with `ids` (the
/// solvers of one build share it); lowers() finds it while someone holds it.
std::shared_ptr<Flattener> attach(const store::Store& st, const IdMapping& ids);

/// lowers() of the attached Flattener of `st`; without one, the snapshot paths as they are.
std::vector<std::string> lowers(const store::Store& st, const std::vector<std::string>& chain);

}  // namespace ocib::solver::flatten
