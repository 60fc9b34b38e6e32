#pragma once
// The longest (most expensive) path through a DAG ending at one vertex: the critical path a
// build summary and `--print graph` report. (The scheduler's priorities are the same
// computation in the other direction: each vertex's longest path to the end.)

#include <cstddef>
#include <functional>
#include <optional>
#include <vector>

namespace ocib::dag {

struct CriticalPath {
  double length = 0;                          // the sum of the costs along `path`
  std::vector<size_t> path;                   // first vertex first, `end` last
  std::vector<double> lengths;                // per vertex: its longest path's length; -1 if not reached
  std::vector<std::optional<size_t>> via;     // per vertex: the dependency its longest path comes through
};

/// Over vertices 0..n-1 with `deps(v)` and `cost(v)`; among equally long dependencies the
/// first listed wins. The graph must be acyclic.
CriticalPath critical_path(size_t n, const std::function<std::vector<size_t>(size_t)>& deps,
                           const std::function<double(size_t)>& cost, size_t end);

}  // namespace ocib::dag
