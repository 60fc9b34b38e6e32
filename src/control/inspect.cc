#include "control/inspect.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "base/fs.h"
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

std::optional<size_t> find_stage(const dockerfile::Dockerfile& df, const std::string& ref, size_t before) {
  std::string l = ref;
  std::transform(l.begin(), l.end(), l.begin(), ::tolower);
  for (const auto& s : df.stages)
    if (static_cast<size_t>(s.index) < before && !s.name.empty() && s.name == l) return static_cast<size_t>(s.index);
  if (!l.empty() && l.find_first_not_of("0123456789") == std::string::npos) {
    size_t i = std::stoul(l);
    if (i < before) return i;
  }
  return std::nullopt;
}

}  // namespace

Result<std::string> print_plan(const Options& opts, const std::string& what) {
  const std::string default_name = dockerfile::default_dockerfile(opts.context);
  std::string df_path = opts.dockerfile.empty() ? fs::join(opts.context, default_name) : opts.dockerfile;
  OCIB_ASSIGN_OR_RETURN(std::string text, fs::read_file(df_path));
  text = dockerfile::utf8(text);  // as build: invalid UTF-8 reads as U+FFFD
  OCIB_ASSIGN_OR_RETURN(dockerfile::Dockerfile df, dockerfile::parse(text, opts.dockerfile.empty() ? default_name : opts.dockerfile));
  std::vector<StageInfo> st(df.stages.size());
  // Step durations recorded by earlier builds in this store, found by step name (the names
  // Builder gives: "[stage i/n] INSTRUCTION"); a step never run is guessed by kind.
  solver::Durations durations = solver::Durations::load(opts.store_root.empty() ? store::Store::default_root() : opts.store_root);
  for (size_t i = 0; i < df.stages.size(); ++i) {
    const auto& s = df.stages[i];
    st[i].name = s.name.empty() ? "stage-" + std::to_string(i) : s.name;
    st[i].line = s.from.line;
    st[i].from_stage = find_stage(df, s.base, i);
    if (!st[i].from_stage) st[i].base = s.base;
    for (const auto& ins : s.body) {
      if (ins.keyword == "RUN" || ins.keyword == "COPY" || ins.keyword == "ADD") {
        ++st[i].steps;
        size_t pos = static_cast<size_t>(&ins - s.body.data());
        std::string name = "[" + st[i].name + " " + std::to_string(pos + 2) + "/" + std::to_string(s.body.size() + 1) +
                           "] " + ins.original;
        auto d = durations.estimate("", name);
        if (d) ++st[i].recorded;
        st[i].seconds += d.value_or(ins.keyword == "RUN" ? 1.0 : 0.1);
      }
      for (const auto& f : ins.flags) {
        std::string ref;
        if (f.name == "from") ref = f.value;
        if (f.name == "mount") {
          auto p = f.value.find("from=");
          if (p != std::string::npos) ref = f.value.substr(p + 5, f.value.find(',', p) - p - 5);
        }
        if (ref.empty()) continue;
        if (auto src = find_stage(df, ref, i)) st[i].copies.push_back({*src, ins.line});
      }
    }
  }
  size_t target = df.stages.size() - 1;
  if (!opts.target.empty()) {
    auto t = find_stage(df, opts.target, df.stages.size());
    if (!t) return Error::invalid("target stage \"" + opts.target + "\" could not be found");
    target = *t;
  }

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
  std::vector<double> cost(st.size(), -1), cost_steps(st.size(), 0);
  std::vector<std::optional<size_t>> via(st.size());
  std::function<double(size_t)> path = [&](size_t i) -> double {
    if (cost[i] >= 0) return cost[i];
    double best = 0;
    std::vector<size_t> deps;
    if (st[i].from_stage) deps.push_back(*st[i].from_stage);
    for (const auto& c : st[i].copies) deps.push_back(c.first);
    for (size_t d : deps) {
      double v = path(d);
      if (!via[i] || v > best) {
        best = v;
        via[i] = d;
      }
    }
    cost_steps[i] = (via[i] ? cost_steps[*via[i]] : 0) + st[i].steps;
    return cost[i] = best + st[i].seconds;
  };
  path(target);
  std::set<size_t> critical;
  for (std::optional<size_t> i = target; i; i = via[*i]) critical.insert(*i);

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
