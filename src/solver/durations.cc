#include "solver/durations.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/fd.h"
#include "base/fs.h"

namespace ocib::solver {

namespace {

using json = nlohmann::json;

double now_epoch() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

Durations Durations::load(const std::string& store_root) {
  Durations d;
  d.root_ = store_root;
  d.path_ = fs::join(store_root, "durations.json");
  auto text = fs::read_file(d.path_);
  if (!text.ok()) return d;
  json j = json::parse(*text, nullptr, false);
  if (!j.is_object()) return d;
  auto read = [](const json& m, std::map<std::string, Entry>& out) {
    if (!m.is_object()) return;
    for (const auto& [k, v] : m.items())
      if (v.is_array() && v.size() == 2 && v[0].is_number() && v[1].is_number())
        out[k] = {v[0].get<double>(), v[1].get<double>()};
  };
  read(j.value("keys", json::object()), d.by_key_);
  read(j.value("names", json::object()), d.by_name_);
  return d;
}

std::optional<double> Durations::estimate(const std::string& key, const std::string& name) const {
  if (auto it = by_key_.find(key); it != by_key_.end()) return it->second.seconds;
  if (auto it = by_name_.find(name); it != by_name_.end()) return it->second.seconds;
  return std::nullopt;
}

void Durations::record(const std::string& key, const std::string& name, double seconds) {
  Entry e{seconds, now_epoch()};
  by_key_[key] = new_key_[key] = e;
  by_name_[name] = new_name_[name] = e;
}

void Durations::trim(std::map<std::string, Entry>& m) {
  if (m.size() <= kMaxEntries) return;
  std::vector<std::pair<double, std::string>> age;
  for (const auto& [k, e] : m) age.emplace_back(e.at, k);
  std::sort(age.begin(), age.end());
  for (size_t i = 0; i < m.size() - kMaxEntries && i < age.size(); ++i) m.erase(age[i].second);
}

void Durations::save() const {
  if (path_.empty() || (new_key_.empty() && new_name_.empty())) return;
  // Serialise read-merge-write between concurrent builds on the same store.
  UniqueFd lock(::open((path_ + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!lock.valid() || ::flock(lock.get(), LOCK_EX) != 0) return;
  Durations cur = load(root_);
  for (const auto& [k, e] : new_key_) cur.by_key_[k] = e;
  for (const auto& [k, e] : new_name_) cur.by_name_[k] = e;
  trim(cur.by_key_);
  trim(cur.by_name_);
  json j = {{"keys", json::object()}, {"names", json::object()}};
  for (const auto& [k, e] : cur.by_key_) j["keys"][k] = {e.seconds, e.at};
  for (const auto& [k, e] : cur.by_name_) j["names"][k] = {e.seconds, e.at};
  (void)fs::write_file_atomic(path_, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace ocib::solver
