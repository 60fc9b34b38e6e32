#pragma once
// A generic DAG scheduler (ninja's graph + plan, concurrent): runs every vertex whose
// dependencies are done, up to `jobs` at once, critical path first. Knows nothing of builds.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/error.h"

namespace ocib::dag {

using VertexId = size_t;

struct Vertex {
  std::string name;
  std::vector<VertexId> deps;
  /// The work. Runs on a worker thread once all deps succeeded.
  std::function<Status()> run;
  /// Estimated cost (any unit) used to prioritise the longest remaining path.
  double cost = 1.0;
};

struct Timing {
  bool ran = false;  // false: not needed, or cancelled before it started
  std::chrono::system_clock::time_point started, completed;
};

class Graph {
 public:
  VertexId add(Vertex v);
  size_t size() const { return vertices_.size(); }
  const Vertex& vertex(VertexId id) const { return vertices_[id]; }

 private:
  friend class Scheduler;
  std::vector<Vertex> vertices_;
};

struct Report {
  std::vector<Timing> timings;   // indexed by VertexId
  size_t cancelled = 0;          // needed vertices that never started because of a failure
  std::optional<VertexId> failed;
};

/// A pool of job slots several schedulers share (e.g. one per platform of a build), so that
/// together they run at most `n` vertices at once, not n each.
class JobSlots {
 public:
  explicit JobSlots(int n) : free_(n < 1 ? 1 : n) {}
  void acquire() {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [this] { return free_ > 0; });
    --free_;
  }
  void release() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      ++free_;
    }
    cv_.notify_one();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int free_;
};

class Scheduler {
 public:
  /// `on_failure` is called once, on the failing worker, right after the first vertex fails,
  /// so the caller can abort siblings that are already running (e.g. kill their sandboxes).
  Scheduler(int jobs, std::function<void()> on_failure = {}, std::shared_ptr<JobSlots> slots = nullptr)
      : jobs_(jobs < 1 ? 1 : jobs), on_failure_(std::move(on_failure)), slots_(std::move(slots)) {}

  /// Runs the ancestors of `targets` (and the targets). Returns the first error, wrapped with
  /// the failing vertex's name; `report` (if given) receives timings either way.
  Status run(const Graph& g, const std::vector<VertexId>& targets, Report* report = nullptr);

 private:
  int jobs_;
  std::function<void()> on_failure_;
  std::shared_ptr<JobSlots> slots_;
};

}  // namespace ocib::dag
