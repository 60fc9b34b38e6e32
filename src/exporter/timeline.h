#pragma once
// The build timeline (--timeline FILE.html, `ocib timeline METADATA.json`): a self-contained
// HTML page drawn from the --metadata-file document, showing where the build's time went.

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace ocib::exporter {

/// The page for a --metadata-file document: one lane per concurrently running step (a step
/// takes the first lane free at its start), a bar per step from its "started" to its
/// "completed" (cached steps hatched, the "ocib.critical_path" steps highlighted, each with a
/// <title> tooltip: name, stage, duration), a time axis with second ticks and a table of the
/// steps. It draws as inline SVG (no script needed, nothing fetched), embeds the metadata in a
/// <script type="application/json" id="ocib-metadata"> and carries a small script that checks
/// the bars against it and sets <body data-check="ok"> (or "mismatch: ...") and the title.
/// The same document always gives the same bytes. An Error for a document without the
/// timings ("ocib.vertices" with numeric "started"/"completed").
Result<std::string> timeline_html(const nlohmann::json& metadata);

/// The lane of each (start, end) interval, returned in the input's order: taken in start
/// order (then end), each goes into the first lane whose last interval ended at or before
/// its start, else into a new lane. Exposed for the unit test.
std::vector<int> assign_lanes(const std::vector<std::pair<double, double>>& intervals);

}  // namespace ocib::exporter
