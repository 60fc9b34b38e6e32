#include "exporter/timeline.h"

#include <algorithm>
#include <regex>
#include <set>
#include <string>

#include <gtest/gtest.h>

namespace ocib::exporter {
namespace {

using nlohmann::json;

json vertex(int id, const std::string& name, const std::string& stage, double started, double completed,
            bool cached = false) {
  return {{"id", id}, {"name", name}, {"stage", stage}, {"cached", cached}, {"key", "k"}, {"digest", ""},
          {"started", started}, {"completed", completed}};
}

// A base step, four branches running at once, a cached step and a final step after them.
json parallel_metadata() {
  const double t = 1700000000.0;
  json verts = json::array({vertex(1, "[base 1/1] COPY busybox /bin/busybox", "base", t, t + 0.5),
                            vertex(2, "[b1 1/1] RUN sleep 1 && echo '<a&b>' \"q\"", "b1", t + 0.5, t + 1.6),
                            vertex(3, "[b2 1/1] RUN sleep 1", "b2", t + 0.6, t + 1.7),
                            vertex(4, "[b3 1/1] RUN sleep 1", "b3", t + 0.7, t + 1.8),
                            vertex(5, "[b4 1/1] RUN sleep 1", "b4", t + 0.8, t + 2.5),
                            vertex(6, "[final 1/2] WORKDIR /app", "final", t + 0.5, t + 0.5, true),
                            vertex(7, "[final 2/2] COPY --from=b4 /x /x", "final", t + 2.5, t + 2.6)});
  return {{"containerimage.digest", "sha256:0123"}, {"ocib.vertices", verts}, {"ocib.critical_path", {1, 5, 7}}};
}

// The <g class="bar ..." data-...> opening tag of step `id`.
std::string bar_tag(const std::string& page, int id) {
  std::smatch m;
  std::regex re("<g class=\"bar[^\"]*\" data-id=\"" + std::to_string(id) + "\"[^>]*>");
  if (!std::regex_search(page, m, re)) return "";
  return m.str();
}

std::string attr(const std::string& tag, const std::string& name) {
  std::smatch m;
  if (!std::regex_search(tag, m, std::regex(" " + name + "=\"([^\"]*)\""))) return "<none>";
  return m[1];
}

TEST(TimelineLanes, FirstFreeLaneAtTheStart) {
  // Four overlapping steps: four lanes. A step starting when another ended takes its lane.
  EXPECT_EQ(assign_lanes({{0, 2}, {0.1, 2}, {0.2, 2}, {0.3, 2}}), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(assign_lanes({{0, 1}, {1, 2}, {2, 3}}), (std::vector<int>{0, 0, 0}));
  // Given out of order: lanes follow the start times, returned in the input's order.
  EXPECT_EQ(assign_lanes({{1, 2}, {0, 1}, {0.5, 3}, {2, 4}}), (std::vector<int>{0, 0, 1, 0}));
  EXPECT_TRUE(assign_lanes({}).empty());
}

TEST(TimelineHtml, OverlappingStepsGetOwnLanesSequentialOnesShare) {
  auto page = timeline_html(parallel_metadata());
  ASSERT_TRUE(page.ok()) << page.error().str();
  std::set<std::string> branch_lanes;
  for (int id : {2, 3, 4, 5}) {
    std::string tag = bar_tag(*page, id);
    ASSERT_FALSE(tag.empty()) << "no bar for step " << id;
    branch_lanes.insert(attr(tag, "data-lane"));
  }
  EXPECT_EQ(branch_lanes.size(), 4u) << "the four overlapping branches share a lane";
  // base (0-0.5), the cached WORKDIR (0.5-0.5), b1 (0.5-1.6) and the final COPY (2.5-2.6)
  // follow each other: one lane.
  for (int id : {1, 6, 2}) EXPECT_EQ(attr(bar_tag(*page, id), "data-lane"), "0") << id;
  EXPECT_EQ(attr(bar_tag(*page, 7), "data-lane"), "0");
  EXPECT_EQ(attr(bar_tag(*page, 1), "data-start"), "0.000");
  EXPECT_EQ(attr(bar_tag(*page, 5), "data-end"), "2.500");
  EXPECT_NE(page->find("4 lanes"), std::string::npos);
  // Second ticks: 0s, 1s, 2s, 3s for a 2.6 s build.
  for (const char* t : {">0s<", ">1s<", ">2s<", ">3s<"}) EXPECT_NE(page->find(t), std::string::npos) << t;
  EXPECT_EQ(page->find(">4s<"), std::string::npos);
}

TEST(TimelineHtml, MarksCriticalAndCachedBars) {
  auto page = timeline_html(parallel_metadata());
  ASSERT_TRUE(page.ok()) << page.error().str();
  for (int id = 1; id <= 7; ++id) {
    std::string tag = bar_tag(*page, id);
    bool critical = id == 1 || id == 5 || id == 7;
    EXPECT_EQ(attr(tag, "data-critical"), critical ? "true" : "false") << tag;
    EXPECT_EQ(tag.find(" critical\"") != std::string::npos, critical) << tag;
    EXPECT_EQ(attr(tag, "data-cached"), id == 6 ? "true" : "false") << tag;
  }
  EXPECT_NE(page->find("url(#hatch)"), std::string::npos);
  // The tooltip: name, stage, duration.
  EXPECT_NE(page->find("<title>[b4 1/1] RUN sleep 1\nstage: b4\nduration: 1.700 s\non the critical path"),
            std::string::npos);
  // The legend and the script's verdict hook.
  EXPECT_NE(page->find("on the critical path</text>"), std::string::npos);
  EXPECT_NE(page->find("<body data-check=\"unchecked\">"), std::string::npos);
}

TEST(TimelineHtml, EscapesNamesAndTheEmbeddedJson) {
  json m = parallel_metadata();
  m["ocib.vertices"][0]["name"] = "RUN echo </script><script>alert(1)</script>";
  m["ocib.vertices"][0]["stage"] = "s\"><x";
  auto page = timeline_html(m);
  ASSERT_TRUE(page.ok()) << page.error().str();
  EXPECT_EQ(page->find("<a&b>"), std::string::npos);
  EXPECT_EQ(page->find("alert(1)</script>"), std::string::npos);
  EXPECT_EQ(page->find("<x"), std::string::npos);
  EXPECT_NE(page->find("echo &#39;&lt;a&amp;b&gt;&#39; &quot;q&quot;"), std::string::npos);
  EXPECT_NE(page->find("data-stage=\"s&quot;&gt;&lt;x\""), std::string::npos);
  // The embedded JSON: no '<' at all, yet the same document once parsed.
  auto open = page->find("<script type=\"application/json\" id=\"ocib-metadata\">");
  ASSERT_NE(open, std::string::npos);
  open = page->find('>', open) + 1;
  auto close = page->find("</script>", open);
  std::string embedded = page->substr(open, close - open);
  EXPECT_EQ(embedded.find('<'), std::string::npos);
  EXPECT_EQ(json::parse(embedded), m);
  // Exactly two scripts: the data and the check; nothing fetched.
  EXPECT_EQ(std::count(page->begin(), page->end(), '\0'), 0);
  size_t scripts = 0;
  for (size_t p = page->find("<script"); p != std::string::npos; p = page->find("<script", p + 1)) ++scripts;
  EXPECT_EQ(scripts, 2u);
  EXPECT_EQ(page->find("src="), std::string::npos);
  EXPECT_EQ(page->find("href="), std::string::npos);
}

TEST(TimelineHtml, SameDocumentSameBytes) {
  auto a = timeline_html(parallel_metadata());
  auto b = timeline_html(json::parse(parallel_metadata().dump(2)));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
}

TEST(TimelineHtml, BadInputIsAnError) {
  auto no_vertices = timeline_html({{"containerimage.digest", "sha256:0"}});
  ASSERT_FALSE(no_vertices.ok());
  EXPECT_NE(no_vertices.error().str().find("ocib.vertices"), std::string::npos) << no_vertices.error().str();
  EXPECT_FALSE(timeline_html(json::array()).ok());
  EXPECT_FALSE(timeline_html({{"ocib.vertices", "x"}}).ok());
  json m = parallel_metadata();
  m["ocib.vertices"][2].erase("completed");
  auto missing = timeline_html(m);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().str().find("ocib.vertices[2]"), std::string::npos) << missing.error().str();
  EXPECT_NE(missing.error().str().find("\"completed\""), std::string::npos) << missing.error().str();
  m = parallel_metadata();
  m["ocib.vertices"][1]["started"] = "soon";
  EXPECT_FALSE(timeline_html(m).ok());
  m = parallel_metadata();
  m["ocib.vertices"][1]["completed"] = 0;
  EXPECT_FALSE(timeline_html(m).ok());
  m = parallel_metadata();
  m["ocib.critical_path"] = "1,5,7";
  EXPECT_FALSE(timeline_html(m).ok());
  // Metadata of a build with no steps is still a page (an empty chart).
  auto empty = timeline_html({{"ocib.vertices", json::array()}});
  ASSERT_TRUE(empty.ok()) << empty.error().str();
  EXPECT_NE(empty->find("0 steps"), std::string::npos);
}

}  // namespace
}  // namespace ocib::exporter
