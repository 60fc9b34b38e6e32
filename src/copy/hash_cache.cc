#include "copy/hash_cache.h"

#include <algorithm>
#include <cstring>
#include <string_view>

#include "base/fs.h"

namespace ocib::copy {

HashCache::Entry HashCache::key_of(const struct stat& st) {
  Entry e;
  e.size = static_cast<uint64_t>(st.st_size);
  e.ino = static_cast<uint64_t>(st.st_ino);
  e.mode = st.st_mode;
  e.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  e.ctime_ns = static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
  return e;
}

// The file: a magic line, then one record per file: u32 path length, the path, size, inode,
// mode, mtime_ns, ctime_ns (8 bytes each, little-endian as written on this machine), u16 digest
// length and the digest. Read with bounds checks: a damaged cache loses entries, never throws.
namespace {
constexpr std::string_view kMagic = "ocib-hash-cache-v2\n";

template <typename T>
bool take(std::string_view& in, T* out) {
  if (in.size() < sizeof(T)) return false;
  std::memcpy(out, in.data(), sizeof(T));
  in.remove_prefix(sizeof(T));
  return true;
}
template <typename T>
void put_raw(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}
}  // namespace

std::shared_ptr<HashCache> HashCache::load(const std::string& path) {
  auto c = std::make_shared<HashCache>();
  c->path_ = path;
  auto data = fs::read_file(path);
  if (!data.ok()) return c;
  std::string_view in(*data);
  if (in.substr(0, kMagic.size()) != kMagic) return c;
  in.remove_prefix(kMagic.size());
  uint64_t count = 0;
  if (!take(in, &count)) return c;
  c->entries_.reserve(static_cast<size_t>(std::min<uint64_t>(count, in.size() / 40)));
  while (!in.empty()) {
    uint32_t len = 0;
    uint16_t dlen = 0;
    Entry e;
    if (!take(in, &len) || in.size() < len) return c;
    std::string rel(in.substr(0, len));
    in.remove_prefix(len);
    if (!take(in, &e.size) || !take(in, &e.ino) || !take(in, &e.mode) || !take(in, &e.mtime_ns) ||
        !take(in, &e.ctime_ns) || !take(in, &dlen) || in.size() < dlen)
      return c;
    e.digest.assign(in.substr(0, dlen));
    in.remove_prefix(dlen);
    c->entries_.emplace(std::move(rel), std::move(e));
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
  std::string out(kMagic);
  put_raw<uint64_t>(out, entries_.size());
  for (const auto& [rel, e] : entries_) {
    put_raw<uint32_t>(out, static_cast<uint32_t>(rel.size()));
    out += rel;
    put_raw(out, e.size);
    put_raw(out, e.ino);
    put_raw(out, e.mode);
    put_raw(out, e.mtime_ns);
    put_raw(out, e.ctime_ns);
    put_raw<uint16_t>(out, static_cast<uint16_t>(e.digest.size()));
    out += e.digest;
  }
  OCIB_TRY(fs::mkdirs(fs::dirname(path_)));
  dirty_ = false;
  return fs::write_file_atomic(path_, out);
}

}  // namespace ocib::copy
