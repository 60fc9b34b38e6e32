#pragma once
// Build progress: one Reporter interface, implementations for plain text and quiet.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ocib::progress {

/// What the end-of-build summary says: why the build took as long as it did.
struct BuildSummary {
  struct PathStep {
    std::string name;
    double seconds = 0;
    bool cached = false;
  };
  double wall = 0;         // first step start to last step end
  int ran = 0, cached = 0;  // steps executed / answered by the cache
  double parallelism = 1;  // sum of step durations / wall
  double critical = 0;     // length of the critical path
  std::vector<PathStep> path;  // the critical path, first step first
};

class Reporter {
 public:
  virtual ~Reporter() = default;
  virtual void started(int id, std::string_view name) = 0;
  virtual void log(int id, std::string_view line) = 0;
  virtual void done(int id, double seconds) = 0;
  virtual void cached(int id, std::string_view name) = 0;
  virtual void failed(int id, std::string_view message) = 0;
  /// A free-form line ("exporting to oci archive", warnings).
  virtual void note(std::string_view line) = 0;
  /// Bytes moved by a transfer (pull, push, context, export). total 0 = unknown. Called
  /// often; reporters rate-limit what they show.
  virtual void transfer(std::string_view what, uint64_t current, uint64_t total) {
    (void)what, (void)current, (void)total;
  }
  /// The end-of-build summary; by default printed as note() lines.
  virtual void summary(const BuildSummary& s);
};

/// Text from a step (its output, its Dockerfile line) as a reporter shows it on a terminal: as
/// the terminal would leave a line after carriage returns (the text after the last '\r', so a
/// progress bar shows its final state), other control characters and escape sequences escaped
/// (log::escape_control: "\x1b[31m" as text). Newlines and tabs stay.
std::string terminal_text(std::string_view text);

/// "plain": BuildKit-style "#N [stage i/n] INSTR", "#N 0.123 output", "#N DONE 0.1s".
/// "rawjson": one JSON event per line. "tty": a live view (colour unless NO_COLOR is set).
/// "auto": tty when stderr is a terminal, else plain. "quiet": nothing. Thread-safe.
/// What steps print never reaches a terminal raw: tty always shows it through terminal_text(),
/// plain does when stderr is a terminal (into a file or pipe it stays byte for byte).
std::unique_ptr<Reporter> make_reporter(const std::string& mode);

}  // namespace ocib::progress
