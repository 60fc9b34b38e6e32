#include "exporter/timeline.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numeric>
#include <set>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace ocib::exporter {

using nlohmann::json;

namespace {

// Step names come from Dockerfiles ("RUN echo '<a&b>'"): everything put into the page goes
// through here, for text and attribute values alike. C0 controls (other than tab) have no
// place in HTML text; they become U+FFFD.
std::string esc(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t') out += "\xEF\xBF\xBD";
        else out += c;
    }
  }
  return out;
}

// Fixed-point text of a number, independent of the C locale (the page must not depend on
// the environment: `ocib timeline` gives the bytes --timeline wrote).
std::string num(double v, int decimals) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, decimals);
  std::string s(buf, r.ptr);
  if (s[0] == '-' && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);  // no "-0.000"
  return s;
}

std::string secs(double v) { return num(v, 3) + " s"; }

// A vertex id as the page's data-id and the critical path list spell it.
std::string id_text(const json& id) { return id.is_string() ? id.get<std::string>() : id.dump(); }

struct Bar {
  std::string id, name, stage;
  bool cached = false, critical = false;
  double start = 0, end = 0;  // seconds since the first step's start
  int lane = 0;
};

// The embedded metadata: JSON inside <script> ends at the first "</script"; every '<', '>'
// and '&' can only be inside a JSON string, where \u003c etc. mean the same characters.
std::string embed_json(const json& j) {
  std::string raw = j.dump(-1, ' ', false, json::error_handler_t::replace), out;
  out.reserve(raw.size());
  for (char c : raw) {
    if (c == '<') out += "\\u003c";
    else if (c == '>') out += "\\u003e";
    else if (c == '&') out += "\\u0026";
    else out += c;
  }
  return out;
}

// The axis' tick spacing: whole seconds, at most ~20 ticks.
double tick_step(double span) {
  static const double kSteps[] = {1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600};
  for (double s : kSteps)
    if (span / s <= 20) return s;
  double s = 3600;
  while (span / s > 20) s *= 2;
  return s;
}

// Checks the bars against the embedded metadata in the browser, so a test can read one
// verdict from the DOM: every step has one bar with its cached flag, the bars marked critical
// are exactly the metadata's critical path, and no two bars of a lane overlap in time.
constexpr const char* kCheckScript = R"JS((function () {
  var problems = [];
  try {
    var meta = JSON.parse(document.getElementById('ocib-metadata').textContent);
    var verts = meta['ocib.vertices'] || [], byId = {}, bars = {};
    verts.forEach(function (v) { byId[String(v.id)] = v; });
    var marked = [], lanes = {};
    document.querySelectorAll('#timeline g.bar').forEach(function (b) {
      var id = b.getAttribute('data-id');
      if (bars[id]) problems.push('two bars for step ' + id);
      bars[id] = b;
      if (b.getAttribute('data-critical') === 'true') marked.push(id);
      (lanes[b.getAttribute('data-lane')] = lanes[b.getAttribute('data-lane')] || []).push(id);
    });
    verts.forEach(function (v) {
      var b = bars[String(v.id)];
      if (!b) problems.push('no bar for step ' + v.id);
      else if ((b.getAttribute('data-cached') === 'true') !== !!v.cached) problems.push('step ' + v.id + ': cached flag differs');
    });
    var want = (meta['ocib.critical_path'] || []).map(String).sort().join(',');
    var got = marked.sort().join(',');
    if (want !== got) problems.push('bars marked critical [' + got + '] but the critical path is [' + want + ']');
    Object.keys(lanes).forEach(function (l) {
      var ivs = lanes[l].map(function (id) { return byId[id]; }).filter(Boolean)
        .sort(function (a, b) { return a.started - b.started; });
      for (var i = 1; i < ivs.length; i++)
        if (ivs[i].started < ivs[i - 1].completed) problems.push('lane ' + l + ': steps ' + ivs[i - 1].id + ' and ' + ivs[i].id + ' overlap');
    });
  } catch (e) {
    problems.push(String(e));
  }
  var verdict = problems.length ? 'mismatch: ' + problems.join('; ') : 'ok';
  document.body.setAttribute('data-check', verdict);
  document.title = 'ocib build timeline (check: ' + verdict + ')';
  document.getElementById('check').textContent = 'Page check: ' + verdict;
})();
)JS";

constexpr const char* kStyle = R"CSS(body { font: 13px/1.4 system-ui, sans-serif; margin: 16px; color: #222; background: #fff; }
h1 { font-size: 18px; margin: 0 0 4px; }
p { margin: 4px 0; }
.muted { color: #666; }
svg text { font: 11px system-ui, sans-serif; }
g.bar:hover rect { opacity: 0.75; }
table.steps { border-collapse: collapse; margin-top: 12px; }
table.steps th, table.steps td { padding: 2px 8px; text-align: left; border-bottom: 1px solid #eee; }
table.steps td.n { text-align: right; font-variant-numeric: tabular-nums; }
table.steps tr.critical td { color: #8f2d00; font-weight: 600; }
table.steps tr.cached td { color: #777; }
)CSS";

// Layout of the chart, in SVG user units (= CSS pixels).
constexpr double kLeft = 64, kPlotW = 1000, kRight = 24, kTop = 28, kLaneH = 26, kBarH = 20;

Result<std::vector<Bar>> read_bars(const json& m) {
  if (!m.is_object()) return Error::invalid("the metadata is not a JSON object");
  auto vs = m.find("ocib.vertices");
  if (vs == m.end())
    return Error::invalid("the metadata has no \"ocib.vertices\" (the step timings ocib build --metadata-file writes)");
  if (!vs->is_array()) return Error::invalid("the metadata's \"ocib.vertices\" is not an array");
  std::set<std::string> critical;
  if (auto cp = m.find("ocib.critical_path"); cp != m.end()) {
    if (!cp->is_array()) return Error::invalid("the metadata's \"ocib.critical_path\" is not an array");
    for (const auto& id : *cp) critical.insert(id_text(id));
  }
  std::vector<Bar> bars;
  for (size_t i = 0; i < vs->size(); ++i) {
    const json& v = (*vs)[i];
    const std::string where = "ocib.vertices[" + std::to_string(i) + "]";
    if (!v.is_object()) return Error::invalid("the metadata's " + where + " is not an object");
    for (const char* k : {"started", "completed"})
      if (!v.contains(k) || !v[k].is_number())
        return Error::invalid("the metadata's " + where + " has no numeric \"" + k + "\" (its start/end time)");
    Bar b;
    b.id = v.contains("id") ? id_text(v["id"]) : std::to_string(i + 1);
    b.name = v.contains("name") && v["name"].is_string() ? v["name"].get<std::string>() : "step " + b.id;
    b.stage = v.contains("stage") && v["stage"].is_string() ? v["stage"].get<std::string>() : "";
    b.cached = v.contains("cached") && v["cached"].is_boolean() && v["cached"].get<bool>();
    b.critical = critical.count(b.id) > 0;
    b.start = v["started"].get<double>();
    b.end = v["completed"].get<double>();
    if (!std::isfinite(b.start) || !std::isfinite(b.end) || b.end < b.start)
      return Error::invalid("the metadata's " + where + " ends before it starts");
    bars.push_back(std::move(b));
  }
  return bars;
}

}  // namespace

std::vector<int> assign_lanes(const std::vector<std::pair<double, double>>& intervals) {
  std::vector<size_t> order(intervals.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return intervals[a] < intervals[b]; });
  std::vector<int> lane(intervals.size(), 0);
  std::vector<double> lane_end;  // when each lane's last step ended
  for (size_t i : order) {
    size_t l = 0;
    while (l < lane_end.size() && lane_end[l] > intervals[i].first) ++l;
    if (l == lane_end.size()) lane_end.push_back(0);
    lane_end[l] = intervals[i].second;
    lane[i] = static_cast<int>(l);
  }
  return lane;
}

Result<std::string> timeline_html(const json& metadata) {
  OCIB_ASSIGN_OR_RETURN(std::vector<Bar> bars, read_bars(metadata));
  // Times relative to the first step's start; bars in start order.
  double t0 = 0, wall = 0;
  if (!bars.empty()) {
    t0 = std::min_element(bars.begin(), bars.end(), [](const Bar& a, const Bar& b) { return a.start < b.start; })->start;
    for (auto& b : bars) {
      b.start -= t0;
      b.end -= t0;
      wall = std::max(wall, b.end);
    }
  }
  std::stable_sort(bars.begin(), bars.end(),
                   [](const Bar& a, const Bar& b) { return std::tie(a.start, a.end) < std::tie(b.start, b.end); });
  std::vector<std::pair<double, double>> ivs;
  for (const auto& b : bars) ivs.emplace_back(b.start, b.end);
  std::vector<int> lanes = assign_lanes(ivs);
  int nlanes = 0;
  for (size_t i = 0; i < bars.size(); ++i) {
    bars[i].lane = lanes[i];
    nlanes = std::max(nlanes, lanes[i] + 1);
  }
  double busy = 0, crit = 0;
  int cached = 0, ncrit = 0;
  for (const auto& b : bars) {
    busy += b.end - b.start;
    if (b.cached) ++cached;
    if (b.critical) {
      crit += b.end - b.start;
      ++ncrit;
    }
  }

  const double step = tick_step(std::max(wall, 1.0));
  const double axis_end = std::max(step, std::ceil(wall / step - 1e-9) * step);
  auto x_of = [&](double t) { return kLeft + t / axis_end * kPlotW; };
  const double width = kLeft + kPlotW + kRight;
  const double height = kTop + std::max(nlanes, 1) * kLaneH + 8;

  std::string h;
  h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  h += "<meta name=\"generator\" content=\"ocib\">\n<title>ocib build timeline</title>\n<style>\n";
  h += kStyle;
  h += "</style>\n</head>\n<body data-check=\"unchecked\">\n<h1>Build timeline</h1>\n";
  if (auto n = metadata.find("image.name"); n != metadata.end() && n->is_string())
    h += "<p>Image <code>" + esc(n->get<std::string>()) + "</code></p>\n";
  if (auto d = metadata.find("containerimage.digest"); d != metadata.end() && d->is_string())
    h += "<p class=\"muted\">Digest <code>" + esc(d->get<std::string>()) + "</code></p>\n";
  h += "<p id=\"summary\">" + std::to_string(bars.size()) + " steps (" + std::to_string(cached) + " cached) in " +
       std::to_string(nlanes) + (nlanes == 1 ? " lane" : " lanes") + "; wall " + secs(wall) + ", busy " + secs(busy) +
       ", parallelism " + num(wall > 0 ? busy / wall : 1.0, 2) + "x; critical path " + secs(crit) + " (" +
       std::to_string(ncrit) + " steps)</p>\n";
  h += "<p id=\"check\" class=\"muted\">Page check: not run (scripts are off)</p>\n";

  // The legend: the three bar styles.
  h += "<svg id=\"legend\" width=\"520\" height=\"22\" role=\"img\" aria-label=\"legend\">\n"
       "<defs><pattern id=\"hatch-legend\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
       "patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#e9e9e9\"/>"
       "<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#a0a0a0\" stroke-width=\"3\"/></pattern></defs>\n"
       "<rect x=\"0\" y=\"4\" width=\"24\" height=\"14\" fill=\"#4a7fb5\"/><text x=\"30\" y=\"15\">step ran</text>\n"
       "<rect x=\"110\" y=\"4\" width=\"24\" height=\"14\" fill=\"#e8590c\" stroke=\"#8f2d00\" stroke-width=\"1.5\"/>"
       "<text x=\"140\" y=\"15\">on the critical path</text>\n"
       "<rect x=\"280\" y=\"4\" width=\"24\" height=\"14\" fill=\"url(#hatch-legend)\" stroke=\"#888\"/>"
       "<text x=\"310\" y=\"15\">cached (answered by the build cache)</text>\n</svg>\n";

  h += "<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(width, 0) + "\" height=\"" +
       num(height, 0) + "\" viewBox=\"0 0 " + num(width, 0) + " " + num(height, 0) +
       "\" role=\"img\" aria-label=\"build timeline\">\n";
  h += "<defs><pattern id=\"hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
       "patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#e9e9e9\"/>"
       "<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#a0a0a0\" stroke-width=\"3\"/></pattern></defs>\n";
  // The time axis: a tick and a grid line every `step` seconds.
  h += "<g class=\"axis\">\n";
  for (double t = 0; t <= axis_end + 1e-9; t += step) {
    std::string x = num(x_of(t), 2);
    h += "<line class=\"tick\" x1=\"" + x + "\" y1=\"" + num(kTop - 6, 0) + "\" x2=\"" + x + "\" y2=\"" +
         num(height - 8, 0) + "\" stroke=\"#ddd\"/><text x=\"" + x + "\" y=\"" + num(kTop - 10, 0) +
         "\" text-anchor=\"middle\" fill=\"#555\">" + num(t, 0) + "s</text>\n";
  }
  h += "</g>\n<g class=\"lanes\">\n";
  for (int l = 0; l < nlanes; ++l)
    h += "<text x=\"4\" y=\"" + num(kTop + l * kLaneH + kBarH / 2 + 4, 1) + "\" fill=\"#555\">lane " +
         std::to_string(l + 1) + "</text>\n";
  h += "</g>\n<g class=\"bars\">\n";
  // Cached steps take no time: a sliver still shows where they were answered. It may cover
  // the start of the next bar in its lane, so the slivers are drawn last (on top).
  std::vector<const Bar*> draw_order;
  for (const auto& b : bars) draw_order.push_back(&b);
  std::stable_partition(draw_order.begin(), draw_order.end(), [](const Bar* b) { return !b->cached; });
  for (const Bar* bp : draw_order) {
    const Bar& b = *bp;
    const double x = x_of(b.start), y = kTop + b.lane * kLaneH;
    const double w = std::max((b.end - b.start) / axis_end * kPlotW, b.cached ? 4.0 : 2.0);
    std::string cls = "bar";
    if (b.cached) cls += " cached";
    if (b.critical) cls += " critical";
    const char* fill = b.cached ? "url(#hatch)" : b.critical ? "#e8590c" : "#4a7fb5";
    const char* stroke = b.critical ? "#8f2d00" : b.cached ? "#888" : "none";
    h += "<g class=\"" + cls + "\" data-id=\"" + esc(b.id) + "\" data-lane=\"" + std::to_string(b.lane) +
         "\" data-stage=\"" + esc(b.stage) + "\" data-start=\"" + num(b.start, 3) + "\" data-end=\"" + num(b.end, 3) +
         "\" data-cached=\"" + (b.cached ? "true" : "false") + "\" data-critical=\"" + (b.critical ? "true" : "false") +
         "\">\n";
    h += "<title>" + esc(b.name) + "\nstage: " + esc(b.stage.empty() ? "(none)" : b.stage) + "\nduration: " +
         secs(b.end - b.start) + (b.cached ? " (cached)" : "") + (b.critical ? "\non the critical path" : "") +
         "\nstarted at +" + secs(b.start) + "</title>\n";
    h += "<rect x=\"" + num(x, 2) + "\" y=\"" + num(y, 2) + "\" width=\"" + num(w, 2) + "\" height=\"" +
         num(kBarH, 0) + "\" rx=\"2\" fill=\"" + fill + "\" stroke=\"" + stroke + "\" stroke-width=\"1.5\"/>\n";
    // The name inside the bar, clipped by a nested <svg> of the bar's size.
    h += "<svg x=\"" + num(x, 2) + "\" y=\"" + num(y, 2) + "\" width=\"" + num(w, 2) + "\" height=\"" + num(kBarH, 0) +
         "\"><text x=\"4\" y=\"14\" fill=\"" + (b.cached ? "#333" : "#fff") + "\">" + esc(b.name) + "</text></svg>\n";
    h += "</g>\n";
  }
  h += "</g>\n</svg>\n";

  // The same steps as a table: readable without hovering, and by a screen reader.
  h += "<table class=\"steps\">\n<thead><tr><th>start</th><th>duration</th><th>lane</th><th>step</th><th>stage</th>"
       "<th></th></tr></thead>\n<tbody>\n";
  for (const auto& b : bars) {
    std::string cls = b.critical ? "critical" : b.cached ? "cached" : "";
    std::string note = b.critical ? "critical path" : "";
    if (b.cached) note += note.empty() ? "cached" : ", cached";
    h += "<tr" + (cls.empty() ? std::string() : " class=\"" + cls + "\"") + "><td class=\"n\">+" + secs(b.start) +
         "</td><td class=\"n\">" + secs(b.end - b.start) + "</td><td class=\"n\">" + std::to_string(b.lane + 1) +
         "</td><td>" + esc(b.name) + "</td><td>" + esc(b.stage) + "</td><td>" + note + "</td></tr>\n";
  }
  h += "</tbody>\n</table>\n";
  h += "<script type=\"application/json\" id=\"ocib-metadata\">" + embed_json(metadata) + "</script>\n";
  h += "<script>\n";
  h += kCheckScript;
  h += "</script>\n</body>\n</html>\n";
  return h;
}

}  // namespace ocib::exporter
