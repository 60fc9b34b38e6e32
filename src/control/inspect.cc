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


// Paths are absolute and clean; "/" contains everything.
bool within(const std::string& a, const std::string& b) {
  return a == b || b == "/" || (a.size() > b.size() && a.compare(0, b.size(), b) == 0 && a[b.size()] == '/');
}
bool overlaps(const std::string& a, const std::string& b) { return within(a, b) || within(b, a); }

// What a stage's own steps write, as far as a Dockerfile tells before a build: COPY/ADD
// destinations, WORKDIR directories, and the working directory of each RUN.
std::vector<std::string> writes_of(const plan::StageState& s) {
  std::vector<std::string> out;
  for (const plan::Step* step : s.own_steps) {
    if (step->kind == plan::Step::Kind::kCopy || step->kind == plan::Step::Kind::kLinked)
      out.push_back(fs::clean(step->copy.dest.empty() ? "/" : step->copy.dest));
    else if (step->kind == plan::Step::Kind::kWorkdir)
      out.push_back(fs::clean(step->workdir));
    else if (step->kind == plan::Step::Kind::kRun)
      out.push_back(fs::clean(step->cwd));
  }
  return out;
}

// The seed's anti-pattern: stage B builds FROM stage A although B's own steps need none of
// what A's steps write, so B waits for all of A. Found from the paths A writes and where B's
// RUN steps work (a RUN may read anything under its working directory; a RUN in "/" may need
// everything, and then nothing is reported). With `fix`: the Dockerfile rewritten (B FROM A's
// base; COPY --from=B of a path A produced becomes COPY --from=A), comments and layout kept.
Result<std::string> lint(const dockerfile::Dockerfile& df, const std::string& text, const plan::Plan& pl,
                         const std::vector<StageInfo>& st, size_t target, bool fix) {
  auto deps_of = [&](const std::vector<std::optional<size_t>>& from) {
    return [&, from](size_t i) {
      std::vector<size_t> d;
      if (from[i]) d.push_back(*from[i]);
      for (const auto& c : st[i].copies) d.push_back(c.first);
      return d;
    };
  };
  std::vector<std::optional<size_t>> from(st.size());
  for (size_t i = 0; i < st.size(); ++i) from[i] = st[i].from_stage;
  auto seconds = [&](size_t i) { return st[i].seconds; };
  const double before = dag::critical_path(st.size(), deps_of(from), seconds, target).lengths[target];
  std::string out;
  std::vector<std::string> lines;
  for (size_t i = 0, j; i <= text.size(); i = j + 1) {
    j = text.find('\n', i);
    if (j == std::string::npos) j = text.size();
    lines.push_back(text.substr(i, j - i));
  }
  bool changed = false;
  for (size_t b = 0; b < st.size(); ++b) {
    if (!st[b].from_stage || !pl.stages[b].planned) continue;
    size_t a = *st[b].from_stage;
    if (pl.stages[a].own_steps.empty()) continue;
    std::vector<std::string> wa = writes_of(pl.stages[a]);
    std::sort(wa.begin(), wa.end());
    wa.erase(std::unique(wa.begin(), wa.end()), wa.end());
    // A RUN reads under its working directory, and its tools from the system directories.
    static const std::vector<std::string> kSystem = {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
                                                     "/usr", "/opt", "/etc"};
    bool needs = false;
    std::string works;
    for (const plan::Step* step : pl.stages[b].own_steps) {
      if (step->kind != plan::Step::Kind::kRun) continue;
      std::string cwd = fs::clean(step->cwd);
      if (works.empty()) works = cwd;
      for (const auto& w : wa) {
        needs = needs || overlaps(cwd, w);
        for (const auto& sys : kSystem) needs = needs || overlaps(sys, w);
      }
    }
    std::string base = st[a].from_stage ? st[*st[a].from_stage].name : df.stages[a].base;
    if (needs || works.empty()) {
      // Without paths to go by: B's parent is also copied on its own elsewhere, so B may only
      // have wanted the parent's base.
      std::optional<int> copied_at;
      for (size_t c = 0; c < st.size() && !copied_at; ++c)
        for (const auto& [src, line] : st[c].copies)
          if (src == a && c != b && !copied_at) copied_at = line;
      if (copied_at)
        out += df.filename + ":" + std::to_string(st[b].line) + ": stage \"" + st[b].name + "\" builds FROM \"" +
               st[a].name + "\", whose result is also copied on its own (line " + std::to_string(*copied_at) +
               "): if \"" + st[b].name + "\" needs none of \"" + st[a].name + "\"'s files, `FROM " + base +
               "` lets the two run in parallel instead of one after the other\n";
      continue;
    }
    auto fixed = from;
    fixed[b] = st[a].from_stage;
    const double after = dag::critical_path(st.size(), deps_of(fixed), seconds, target).lengths[target];
    char timing[160];
    std::snprintf(timing, sizeof timing, "\"%s\" waits ~%.0f s for \"%s\"; critical path %.0f s -> ~%.0f s",
                  st[b].name.c_str(), st[a].seconds, st[a].name.c_str(), before, after);
    out += df.filename + ":" + std::to_string(st[b].line) + ": stage \"" + st[b].name + "\" builds FROM \"" +
           st[a].name + "\" but needs none of its files (\"" + st[a].name + "\" writes " + join(wa, ", ") + "; \"" +
           st[b].name + "\" works in " + works + "): `FROM " + base + "` lets them run in parallel (" + timing + ")\n";
    // COPY --from=B of what A produced: from A instead.
    std::vector<int> copy_lines;
    for (size_t c = 0; c < df.stages.size(); ++c)
      for (const auto& ins : df.stages[c].body) {
        const auto* f = ins.keyword == "COPY" ? ins.flag("from") : nullptr;
        if (!f || (ascii_lower(f->value) != st[b].name && f->value != std::to_string(b))) continue;
        bool from_a = !ins.words.empty();
        for (size_t w = 0; w + 1 < ins.words.size(); ++w) {
          std::string p = fs::clean("/" + ins.words[w]);
          from_a = from_a && std::any_of(wa.begin(), wa.end(), [&](const std::string& x) { return within(p, x); });
        }
        if (!from_a) continue;
        copy_lines.push_back(ins.line);
        out += df.filename + ":" + std::to_string(ins.line) + ": `COPY --from=" + f->value + "` copies what \"" +
               st[a].name + "\" produced: `COPY --from=" + st[a].name + "`\n";
      }
    if (!fix) continue;
    // The FROM line: its image word becomes A's base as written.
    std::string& fl = lines[static_cast<size_t>(st[b].line - 1)];
    size_t k = fl.find_first_not_of(" \t");
    size_t word = fl.find_first_not_of(" \t", k + 4);
    while (word != std::string::npos && fl.compare(word, 2, "--") == 0)
      word = fl.find_first_not_of(" \t", fl.find_first_of(" \t", word));
    if (word == std::string::npos) continue;
    size_t end = fl.find_first_of(" \t", word);
    fl.replace(word, (end == std::string::npos ? fl.size() : end) - word, base);
    for (int l : copy_lines) {
      std::string& cl = lines[static_cast<size_t>(l - 1)];
      for (const std::string& spelled : {df.stages[b].name, std::to_string(b)}) {
        const std::string flag = "--from=" + spelled;
        size_t at = ascii_lower(cl).find(ascii_lower(flag));
        if (at != std::string::npos) cl.replace(at, flag.size(), "--from=" + st[a].name);
      }
    }
    changed = true;
  }
  if (!fix) return out;
  if (!changed) return std::string();
  std::string rewritten = join(lines, "\n");
  return rewritten;
}

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

  if (what == "lint" || what == "lint-fix") return lint(df, text, pl, st, target, what == "lint-fix");

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
