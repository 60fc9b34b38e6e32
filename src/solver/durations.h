#pragma once
// Recorded step durations: how long each step took the last time it executed, so the
// scheduler can start the step on the longest remaining path first (ninja's .ninja_log idea).
// Kept in the store as durations.json: by step key (exact) and by step name (the same
// instruction after an edit, a good guess). Bounded; the oldest entries go first.

#include <map>
#include <optional>
#include <string>

namespace ocib::solver {

class Durations {
 public:
  /// Loads STORE/durations.json; a missing or unreadable file is an empty record.
  static Durations load(const std::string& store_root);

  /// The recorded seconds for a step, by key first, then by name.
  std::optional<double> estimate(const std::string& key, const std::string& name) const;

  void record(const std::string& key, const std::string& name, double seconds);

  /// Merges what this build recorded into the file (re-read under a lock, so concurrent
  /// builds do not drop each other's entries) and writes it atomically. Best effort.
  void save() const;

  static constexpr size_t kMaxEntries = 4096;

 private:
  struct Entry {
    double seconds = 0;
    double at = 0;  // when recorded (epoch seconds): the oldest are dropped first
  };
  static void trim(std::map<std::string, Entry>& m);
  std::string root_, path_;
  std::map<std::string, Entry> by_key_, by_name_;
  std::map<std::string, Entry> new_key_, new_name_;  // recorded by this build
};

}  // namespace ocib::solver
