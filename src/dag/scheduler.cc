#include "dag/scheduler.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <queue>
#include <thread>

namespace ocib::dag {

VertexId Graph::add(Vertex v) {
  vertices_.push_back(std::move(v));
  return vertices_.size() - 1;
}

Status Scheduler::run(const Graph& g, const std::vector<VertexId>& targets, Report* report) {
  const size_t n = g.size();
  // Mark what is needed: the targets and their ancestors.
  std::vector<char> needed(n, 0);
  std::vector<VertexId> stack(targets.begin(), targets.end());
  while (!stack.empty()) {
    VertexId v = stack.back();
    stack.pop_back();
    if (v >= n || needed[v]) continue;
    needed[v] = 1;
    for (VertexId d : g.vertices_[v].deps) stack.push_back(d);
  }
  // Reverse edges among needed vertices, pending-dependency counts.
  std::vector<std::vector<VertexId>> dependents(n);
  std::vector<size_t> pending(n, 0);
  for (VertexId v = 0; v < n; ++v) {
    if (!needed[v]) continue;
    for (VertexId d : g.vertices_[v].deps) {
      dependents[d].push_back(v);
      ++pending[v];
    }
  }
  // Priority = cost of the longest path from the vertex to the end (vertices are added in
  // topological order by construction, but do not rely on it: iterate to a fixed point).
  std::vector<double> prio(n, 0.0);
  {
    std::vector<VertexId> order;  // reverse topological via Kahn on the needed subgraph
    std::vector<size_t> outdeg(n, 0);
    for (VertexId v = 0; v < n; ++v)
      if (needed[v]) outdeg[v] = dependents[v].size();
    std::vector<VertexId> q;
    for (VertexId v = 0; v < n; ++v)
      if (needed[v] && outdeg[v] == 0) q.push_back(v);
    while (!q.empty()) {
      VertexId v = q.back();
      q.pop_back();
      double best = 0;
      for (VertexId s : dependents[v]) best = std::max(best, prio[s]);
      prio[v] = best + g.vertices_[v].cost;
      for (VertexId d : g.vertices_[v].deps)
        if (--outdeg[d] == 0) q.push_back(d);
    }
  }

  auto cmp = [&](VertexId a, VertexId b) { return prio[a] < prio[b] || (prio[a] == prio[b] && a > b); };
  std::priority_queue<VertexId, std::vector<VertexId>, decltype(cmp)> ready(cmp);
  size_t remaining = 0;
  for (VertexId v = 0; v < n; ++v) {
    if (!needed[v]) continue;
    ++remaining;
    if (pending[v] == 0) ready.push(v);
  }

  std::vector<Timing> timings(n);
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Error> first_error;
  std::optional<VertexId> failed;
  size_t running = 0;

  auto worker = [&] {
    std::unique_lock<std::mutex> lk(mu);
    for (;;) {
      cv.wait(lk, [&] { return !ready.empty() || remaining == 0 || first_error.has_value(); });
      if (remaining == 0 || first_error) return;
      VertexId v = ready.top();
      ready.pop();
      ++running;
      timings[v].ran = true;
      timings[v].started = std::chrono::system_clock::now();
      lk.unlock();
      if (slots_) {
        slots_->acquire();
        timings[v].started = std::chrono::system_clock::now();  // (no other thread reads it yet)
      }
      Status st = g.vertices_[v].run ? g.vertices_[v].run() : Status{};
      if (slots_) slots_->release();
      auto end = std::chrono::system_clock::now();
      bool call_failure_hook = false;
      lk.lock();
      timings[v].completed = end;
      --running;
      --remaining;
      if (!st.ok()) {
        if (!first_error) {
          Error e = std::move(st).error();
          first_error = std::move(e);
          failed = v;
          call_failure_hook = true;
        }
      } else {
        for (VertexId s : dependents[v])
          if (--pending[s] == 0) ready.push(s);
      }
      cv.notify_all();
      if (call_failure_hook && on_failure_) {
        lk.unlock();
        on_failure_();
        lk.lock();
      }
    }
  };

  int nthreads = static_cast<int>(std::min<size_t>(static_cast<size_t>(jobs_), std::max<size_t>(remaining, 1)));
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(nthreads));
  for (int i = 0; i < nthreads; ++i) threads.emplace_back(worker);
  for (auto& t : threads) t.join();

  size_t cancelled = 0;
  for (VertexId v = 0; v < n; ++v)
    if (needed[v] && !timings[v].ran) ++cancelled;
  if (report) {
    report->timings = std::move(timings);
    report->cancelled = cancelled;
    report->failed = failed;
  }
  if (first_error) return std::move(*first_error);
  return {};
}

}  // namespace ocib::dag
