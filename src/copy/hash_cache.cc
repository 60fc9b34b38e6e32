#include "copy/hash_cache.h"

#include <nlohmann/json.hpp>

#include "base/fs.h"

namespace ocib::copy {

using nlohmann::json;

HashCache::Entry HashCache::key_of(const struct stat& st) {
  Entry e;
  e.size = static_cast<uint64_t>(st.st_size);
  e.ino = static_cast<uint64_t>(st.st_ino);
  e.mode = st.st_mode;
  e.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  e.ctime_ns = static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
  return e;
}

std::shared_ptr<HashCache> HashCache::load(const std::string& path) {
  auto c = std::make_shared<HashCache>();
  c->path_ = path;
  auto data = fs::read_file(path);
  if (!data.ok()) return c;
  auto j = json::parse(*data, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("files") || !j["files"].is_object()) return c;
  for (auto it = j["files"].begin(); it != j["files"].end(); ++it) {
    const json& v = it.value();
    // A damaged cache file loses entries; it never throws.
    if (!v.is_array() || v.size() != 6 || !v[5].is_string()) continue;
    bool numbers = true;
    for (size_t i = 0; i < 5; ++i) numbers = numbers && v[i].is_number_integer();
    if (!numbers) continue;
    Entry e;
    e.size = v[0].get<uint64_t>();
    e.ino = v[1].get<uint64_t>();
    e.mode = v[2].get<uint64_t>();
    e.mtime_ns = v[3].get<int64_t>();
    e.ctime_ns = v[4].get<int64_t>();
    e.digest = v[5].get<std::string>();
    c->entries_.emplace(it.key(), std::move(e));
  }
  return c;
}

std::optional<std::string> HashCache::get(const std::string& rel, const struct stat& st) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = entries_.find(rel);
  if (it == entries_.end()) return std::nullopt;
  Entry k = key_of(st);
  Entry& e = it->second;
  if (e.size != k.size || e.ino != k.ino || e.mode != k.mode || e.mtime_ns != k.mtime_ns ||
      e.ctime_ns != k.ctime_ns)
    return std::nullopt;
  e.used = true;
  return e.digest;
}

void HashCache::put(const std::string& rel, const struct stat& st, const std::string& digest) {
  std::lock_guard<std::mutex> lk(mu_);
  Entry e = key_of(st);
  e.digest = digest;
  e.used = true;
  entries_[rel] = std::move(e);
  dirty_ = true;
}

Status HashCache::save() {
  std::lock_guard<std::mutex> lk(mu_);
  bool pruned = false;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (!it->second.used) {
      it = entries_.erase(it);
      pruned = true;
    } else {
      ++it;
    }
  }
  if (!dirty_ && !pruned) return {};
  json files = json::object();
  for (const auto& [rel, e] : entries_)
    files[rel] = json::array({e.size, e.ino, e.mode, e.mtime_ns, e.ctime_ns, e.digest});
  OCIB_TRY(fs::mkdirs(fs::dirname(path_)));
  dirty_ = false;
  return fs::write_file_atomic(path_, json({{"version", 1}, {"files", files}}).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace ocib::copy
