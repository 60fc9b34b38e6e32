#include "base/idmap.h"

#include <pwd.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace ocib {

static std::optional<uint32_t> map_forward(const std::vector<IdRange>& r, uint32_t host) {
  for (const auto& e : r)
    if (host >= e.host && host - e.host < e.count) return e.container + (host - e.host);
  return std::nullopt;
}

static std::optional<uint32_t> map_back(const std::vector<IdRange>& r, uint32_t c) {
  for (const auto& e : r)
    if (c >= e.container && c - e.container < e.count) return e.host + (c - e.container);
  return std::nullopt;
}

std::optional<uint32_t> IdMapping::host_to_container_uid(uint32_t h) const { return map_forward(uids, h); }
std::optional<uint32_t> IdMapping::host_to_container_gid(uint32_t h) const { return map_forward(gids, h); }
std::optional<uint32_t> IdMapping::container_to_host_uid(uint32_t c) const { return map_back(uids, c); }
std::optional<uint32_t> IdMapping::container_to_host_gid(uint32_t c) const { return map_back(gids, c); }

std::string format_id_map(const std::vector<IdRange>& ranges) {
  std::string out;
  for (const auto& r : ranges)
    out += std::to_string(r.container) + " " + std::to_string(r.host) + " " + std::to_string(r.count) + "\n";
  return out;
}

IdMapping IdMapping::single(uid_t uid, gid_t gid) {
  IdMapping m;
  m.uids = {{0, uid, 1}};
  m.gids = {{0, gid, 1}};
  m.description = "single id (caller " + std::to_string(uid) + " -> 0)";
  return m;
}

// Finds "name:start:count" or "uid:start:count" for the caller in /etc/subuid-style files.
static std::optional<IdRange> sub_range(const char* file, const std::string& name, uint32_t id) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::string who, start, count;
    if (!std::getline(ss, who, ':') || !std::getline(ss, start, ':') || !std::getline(ss, count)) continue;
    if (who != name && who != std::to_string(id)) continue;
    try {
      IdRange r{1, static_cast<uint32_t>(std::stoul(start)), static_cast<uint32_t>(std::stoul(count))};
      if (r.count > 0) return r;
    } catch (...) {
    }
  }
  return std::nullopt;
}

static bool on_path(const std::string& prog) {
  const char* path = getenv("PATH");
  std::string p = path ? path : "/usr/bin:/bin";
  std::stringstream ss(p);
  std::string dir;
  while (std::getline(ss, dir, ':'))
    if (!dir.empty() && access((dir + "/" + prog).c_str(), X_OK) == 0) return true;
  return false;
}

IdMapping IdMapping::detect() {
  uid_t uid = getuid();
  gid_t gid = getgid();
  if (uid == 0) {
    IdMapping m;
    m.uids = {{0, 0, 65536}};
    m.gids = {{0, 0, 65536}};
    m.description = "identity 0-65535 (root)";
    return m;
  }
  std::string name;
  if (struct passwd* pw = getpwuid(uid)) name = pw->pw_name;
  auto su = sub_range("/etc/subuid", name, uid);
  auto sg = sub_range("/etc/subgid", name, uid);
  if (su && sg && on_path("newuidmap") && on_path("newgidmap")) {
    IdMapping m;
    uint32_t n = std::min<uint32_t>(su->count, 65535);
    uint32_t ng = std::min<uint32_t>(sg->count, 65535);
    m.uids = {{0, uid, 1}, {1, su->host, n}};
    m.gids = {{0, gid, 1}, {1, sg->host, ng}};
    m.needs_helpers = true;
    m.description = "subordinate ids " + std::to_string(su->host) + "+" + std::to_string(n) + " (newuidmap)";
    return m;
  }
  return single(uid, gid);
}

}  // namespace ocib
