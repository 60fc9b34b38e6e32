#include "control/inspect.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "base/spec.h"
#include "dag/critical_path.h"
#include "oci/platform.h"
#include "plan/planner.h"
#include "solver/durations.h"
#include "dockerfile/dockerfile.h"
#include "dockerfile/dockerignore.h"
#include "store/store.h"

namespace ocib::control {

namespace {

using nlohmann::json;

struct StageInfo {
  std::string name;
  int line = 0;
  std::optional<size_t> from_stage;            // FROM <stage>
  std::string base;                            // FROM <image> otherwise
  std::vector<std::pair<size_t, int>> copies;  // (stage, line) of COPY --from / --mount from=
  int steps = 0;                               // RUN/COPY/ADD
  double seconds = 0;                          // estimated: recorded durations, else a guess
  int recorded = 0;                            // steps whose duration an earlier build recorded
};

// The world for an outline: nothing is resolved, pulled, hashed or downloaded. Bases are empty
// images, so the plan has each stage's own steps, named as a build names them, and its edges.
class OutlineSources : public plan::Sources {
 public:
  Result<plan::SourceImage> image(const std::string&, const oci::Platform& p) override {
    plan::SourceImage img;
    img.config.platform = p;
    return img;
  }
  Result<std::string> hash(int, const std::vector<std::string>&, const copy::SourceFilter&,
                           copy::SourceManifest*) override {
    return std::string("outline");
  }
  Result<plan::Download> fetch(const std::string&) override { return plan::Download{}; }
  void note(const std::string&) override {}
};

}  // namespace

Result<std::string> print_plan(const Options& opts, const std::string& what) {
  const std::string default_name = dockerfile::default_dockerfile(opts.context);
  std::string df_path = opts.dockerfile.empty() ? fs::join(opts.context, default_name) : opts.dockerfile;
  OCIB_ASSIGN_OR_RETURN(std::string text, fs::read_file(df_path));
  text = dockerfile::utf8(text);  // as build: invalid UTF-8 reads as U+FFFD
  OCIB_ASSIGN_OR_RETURN(dockerfile::Dockerfile df, dockerfile::parse(text, opts.dockerfile.empty() ? default_name : opts.dockerfile));
  if (df.stages.empty()) return Error::at({df.filename, 0, 0}, "no build stage in Dockerfile");
  // The planner's own view of every stage (FROM expanded, stages resolved as a build resolves
  // them), without the world.
  OutlineSources sources;
  plan::Request req;
  req.target = opts.target;
  req.build_args = opts.build_args;
  req.allow = opts.allow;
  req.platform = opts.platforms.empty() ? oci::host() : opts.platforms.front();
  req.outline = true;
  for (const auto& [name, value] : opts.build_contexts) {
    plan::NamedContext c;
    c.image = value;  // an outline reads no directory: every named context stands for an image
    req.named_contexts[ascii_lower(name)] = c;
  }
  OCIB_ASSIGN_OR_RETURN(plan::Plan pl, plan::make_plan(df, req, sources));
  // Step durations recorded by earlier builds in this store, by step name (an outline's keys
  // are not a build's); a step never run is guessed by kind.
  solver::Durations durations = solver::Durations::load(opts.store_root.empty() ? store::Store::default_root() : opts.store_root);
  std::vector<StageInfo> st(pl.stages.size());
  for (size_t i = 0; i < pl.stages.size(); ++i) {
    const plan::StageState& s = pl.stages[i];
    st[i].name = df.stages[i].name.empty() ? "stage-" + std::to_string(i) : df.stages[i].name;
    st[i].line = df.stages[i].from.line;
    st[i].from_stage = s.from_stage;
    st[i].base = s.planned ? s.base : df.stages[i].base;
    st[i].copies = s.uses;
    for (const plan::Step* step : s.own_steps) {
      ++st[i].steps;
      auto d = durations.estimate("", step->name);
      if (d) ++st[i].recorded;
      st[i].seconds += d.value_or(step->kind == plan::Step::Kind::kRun ? 1.0 : 0.1);
    }
  }
  size_t target = pl.target;

  if (what == "lint") {
    // The seed's anti-pattern: stage B derives FROM stage A only to reach A's base, while
    // A's own result is consumed separately (COPY --from=A elsewhere). B then waits for all
    // of A's steps although it may need none of A's files.
    std::string out;
    for (size_t b = 0; b < st.size(); ++b) {
      if (!st[b].from_stage) continue;
      size_t a = *st[b].from_stage;
      if (st[a].steps == 0) continue;
      for (size_t c = 0; c < st.size(); ++c)
        for (const auto& [src, line] : st[c].copies) {
          if (src != a || c == b) continue;
          std::string base = st[a].from_stage ? st[*st[a].from_stage].name : st[a].base;
          out += df.filename + ":" + std::to_string(st[b].line) + ": stage \"" + st[b].name +
                 "\" builds FROM \"" + st[a].name + "\", whose result is also copied on its own (line " +
                 std::to_string(line) + "): if \"" + st[b].name + "\" needs none of \"" + st[a].name +
                 "\"'s files, `FROM " + base + "` lets the two run in parallel instead of one after the other\n";
          goto next_b;
        }
    next_b:;
    }
    return out;
  }

  // Critical path by estimated seconds (each stage costs its steps' durations; dependencies
  // are FROM + copies); the path's length in steps is reported too.
  auto deps_of = [&](size_t i) {
    std::vector<size_t> deps;
    if (st[i].from_stage) deps.push_back(*st[i].from_stage);
    for (const auto& c : st[i].copies) deps.push_back(c.first);
    return deps;
  };
  dag::CriticalPath cp = dag::critical_path(st.size(), deps_of, [&](size_t i) { return st[i].seconds; }, target);
  const std::vector<double>& cost = cp.lengths;
  const std::vector<std::optional<size_t>>& via = cp.via;
  std::vector<double> cost_steps(st.size(), -1);
  std::function<double(size_t)> steps_to = [&](size_t i) {
    if (cost_steps[i] < 0) cost_steps[i] = (via[i] ? steps_to(*via[i]) : 0) + st[i].steps;
    return cost_steps[i];
  };
  for (size_t i = 0; i < st.size(); ++i)
    if (cost[i] >= 0) steps_to(i);
  std::set<size_t> critical(cp.path.begin(), cp.path.end());

  if (what == "graph-json") {
    json nodes = json::array(), edges = json::array();
    for (size_t i = 0; i < st.size(); ++i) {
      nodes.push_back({{"id", i}, {"name", st[i].name}, {"steps", st[i].steps}, {"line", st[i].line},
                       {"base", st[i].base}, {"critical", critical.count(i) > 0},
                       {"path_steps", cost[i] < 0 ? 0 : cost_steps[i]},
                       {"estimated_seconds", st[i].seconds}, {"recorded_steps", st[i].recorded},
                       {"path_seconds", cost[i] < 0 ? 0 : cost[i]}});
      if (st[i].from_stage) edges.push_back({{"from", *st[i].from_stage}, {"to", i}, {"kind", "FROM"}});
      for (const auto& c : st[i].copies) edges.push_back({{"from", c.first}, {"to", i}, {"kind", "COPY"}, {"line", c.second}});
    }
    return json({{"target", target}, {"critical_path_steps", cost_steps[target]}, {"critical_path_seconds", cost[target]},
                 {"stages", nodes}, {"edges", edges}}).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  if (what != "graph") return Error::invalid("unknown --print value \"" + what + "\" (graph, graph-json, lint, plan)");
  std::string dot = "digraph build {\n  rankdir=LR;\n";
  for (size_t i = 0; i < st.size(); ++i) {
    char est[32];
    std::snprintf(est, sizeof est, "%.1f", st[i].seconds);
    dot += "  s" + std::to_string(i) + " [label=\"" + st[i].name + "\\n" + std::to_string(st[i].steps) + " steps, ~" + est +
           "s" + (st[i].recorded < st[i].steps ? " (guessed)" : "") + "\"" +
           (critical.count(i) ? ", color=red, penwidth=2" : "") + "];\n";
    if (!st[i].base.empty() && st[i].base != "scratch")
      dot += "  b" + std::to_string(i) + " [label=\"" + st[i].base + "\", shape=box];\n  b" + std::to_string(i) +
             " -> s" + std::to_string(i) + ";\n";
    if (st[i].from_stage)
      dot += "  s" + std::to_string(*st[i].from_stage) + " -> s" + std::to_string(i) + " [label=FROM" +
             (critical.count(i) && via[i] == st[i].from_stage ? ", color=red" : "") + "];\n";
    for (const auto& c : st[i].copies)
      dot += "  s" + std::to_string(c.first) + " -> s" + std::to_string(i) + " [style=dashed, label=COPY" +
             (critical.count(i) && via[i] == c.first ? ", color=red" : "") + "];\n";
  }
  return dot + "}\n";
}

}  // namespace ocib::control
