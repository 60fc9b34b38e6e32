#include "dag/critical_path.h"

#include <algorithm>
#include <utility>

namespace ocib::dag {

CriticalPath critical_path(size_t n, const std::function<std::vector<size_t>(size_t)>& deps,
                           const std::function<double(size_t)>& cost, size_t end) {
  CriticalPath out;
  out.lengths.assign(n, -1);
  out.via.assign(n, std::nullopt);
  if (end >= n) return out;
  // Iterative post-order (deep chains of steps must not recurse).
  std::vector<std::pair<size_t, bool>> stack = {{end, false}};
  while (!stack.empty()) {
    auto [v, expanded] = stack.back();
    stack.pop_back();
    if (out.lengths[v] >= 0) continue;
    std::vector<size_t> ds = deps(v);
    if (!expanded) {
      stack.push_back({v, true});
      for (size_t d : ds)
        if (d < n && out.lengths[d] < 0) stack.push_back({d, false});
      continue;
    }
    double best = 0;
    for (size_t d : ds) {
      if (d >= n || out.lengths[d] < 0) continue;
      if (!out.via[v] || out.lengths[d] > best) {
        best = out.lengths[d];
        out.via[v] = d;
      }
    }
    out.lengths[v] = best + cost(v);
  }
  out.length = out.lengths[end];
  for (std::optional<size_t> v = end; v; v = out.via[*v]) out.path.push_back(*v);
  std::reverse(out.path.begin(), out.path.end());
  return out;
}

}  // namespace ocib::dag
