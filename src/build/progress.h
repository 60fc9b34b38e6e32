#pragma once
// Build progress: one Reporter interface, implementations for plain text and quiet.

#include <memory>
#include <string>
#include <string_view>

namespace ocib::build {

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
};

/// "plain": BuildKit-style "#N [stage i/n] INSTR", "#N 0.123 output", "#N DONE 0.1s".
/// "rawjson": one JSON event per line. "tty": a live view (colour unless NO_COLOR is set).
/// "auto": tty when stderr is a terminal, else plain. "quiet": nothing. Thread-safe.
std::unique_ptr<Reporter> make_reporter(const std::string& mode);

}  // namespace ocib::build
