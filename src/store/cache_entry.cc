#include "store/cache_entry.h"

namespace ocib::store {

using nlohmann::json;

json CacheEntry::to_json() const {
  json b = json::object();
  for (const auto& [compression, blob] : blobs)
    b[compression] = {{"digest", blob.digest}, {"diff_id", blob.diff_id}, {"media_type", blob.media_type},
                      {"size", blob.size}};
  return {{"snapshot", snapshot}, {"created", created}, {"name", name}, {"blobs", b}};
}

std::optional<CacheEntry> CacheEntry::from_json(const json& j) {
  if (!j.is_object()) return std::nullopt;
  auto str = [](const json& o, const char* k) {
    auto it = o.find(k);
    return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  auto num = [](const json& o, const char* k) {
    auto it = o.find(k);
    return it != o.end() && it->is_number_integer() ? it->get<int64_t>() : int64_t{0};
  };
  CacheEntry e;
  e.snapshot = str(j, "snapshot");
  e.created = num(j, "created");
  e.name = str(j, "name");
  if (auto b = j.find("blobs"); b != j.end() && b->is_object())
    for (auto it = b->begin(); it != b->end(); ++it) {
      if (!it->is_object()) continue;
      e.blobs[it.key()] = {str(*it, "digest"), str(*it, "diff_id"), str(*it, "media_type"), num(*it, "size")};
    }
  return e;
}

}  // namespace ocib::store
