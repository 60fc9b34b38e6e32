#include "store/maintenance.h"

#include <dirent.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <set>

#include <nlohmann/json.hpp>

#include "base/sha256.h"

namespace ocib::store {

using nlohmann::json;

namespace {

std::vector<std::string> list(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  ::closedir(d);
  return out;
}

thread_local uint64_t g_tree_bytes = 0;
int add_size(const char*, const struct stat* st, int type, struct FTW*) {
  if (type == FTW_F) g_tree_bytes += static_cast<uint64_t>(st->st_blocks) * 512;
  return 0;
}
uint64_t tree_bytes(const std::string& path) {
  g_tree_bytes = 0;
  ::nftw(path.c_str(), add_size, 32, FTW_PHYS);
  return g_tree_bytes;
}

uint64_t file_bytes(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

// An in-flight (or abandoned) temp file of fs::write_file_atomic or a blob writer.
bool is_tmp_name(const std::string& name) { return name.find(".tmp-") != std::string::npos; }

// Removes the temp file `dir`/`name` if its writer is provably gone (see maintenance.h).
bool remove_abandoned_tmp(const std::string& dir, const std::string& name, int64_t now) {
  std::string p = fs::join(dir, name);
  struct stat sb;
  if (::lstat(p.c_str(), &sb) != 0 || !S_ISREG(sb.st_mode)) return false;
  auto pid = fs::tmp_name_pid(name);
  bool gone = pid ? fs::pid_is_dead(*pid) : now - static_cast<int64_t>(sb.st_mtime) >= kTmpGraceSeconds;
  return gone && ::unlink(p.c_str()) == 0;
}

std::optional<json> read_json(const std::string& path) {
  auto data = fs::read_file(path);
  if (!data.ok()) return std::nullopt;
  auto j = json::parse(*data, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

// The "digest" string of a descriptor object; "" for anything else (blobs are untrusted).
std::string digest_of_descriptor(const json& d) {
  if (!d.is_object()) return {};
  auto it = d.find("digest");
  return it != d.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Blobs an image needs: the manifest, its config and layers (and, for an index, its children,
// walked with a work list: a chain of thousands of nested indexes must not recurse).
void image_blobs(const Store& st, const std::string& top, std::set<std::string>& out,
                 std::vector<std::string>* problems) {
  std::vector<std::string> todo = {top};
  while (!todo.empty()) {
    std::string digest = std::move(todo.back());
    todo.pop_back();
    if (!out.insert(digest).second) continue;
    if (!st.has_blob(digest)) {
      if (problems) problems->push_back("image blob " + digest + " is missing");
      continue;
    }
    auto j = read_json(st.blob_path(digest));
    if (!j || !j->is_object()) {
      if (problems) problems->push_back("manifest " + digest + " is not a JSON object");
      continue;
    }
    auto need = [&](const json& d) {
      std::string dg = digest_of_descriptor(d);
      if (dg.empty()) {
        if (problems) problems->push_back("image " + digest + " has a descriptor without a digest");
        return;
      }
      out.insert(dg);
      if (problems && !st.has_blob(dg)) problems->push_back("blob " + dg + " of image " + digest + " is missing");
    };
    if (auto c = j->find("config"); c != j->end()) need(*c);
    if (auto l = j->find("layers"); l != j->end() && l->is_array())
      for (const auto& d : *l) need(d);
    if (auto m = j->find("manifests"); m != j->end() && m->is_array())
      for (const auto& d : *m) {
        std::string dg = digest_of_descriptor(d);
        if (!dg.empty()) todo.push_back(std::move(dg));
        else if (problems) problems->push_back("image index " + digest + " has an entry without a digest");
      }
  }
}

}  // namespace

Result<fs::FileLock> gc_lock(const Store& st, bool exclusive) {
  std::string p = fs::join(st.root(), "locks/gc.lock");
  return exclusive ? fs::FileLock::acquire(p) : fs::FileLock::acquire_shared(p);
}

Result<CheckReport> check(const Store& st) {
  CheckReport r;
  std::string blobs = fs::join(st.root(), "blobs/sha256");
  for (const auto& hex : list(blobs)) {
    if (is_tmp_name(hex)) continue;  // a writer's, not a blob yet
    ++r.blobs;
    auto h = Sha256::hex_file(fs::join(blobs, hex));
    if (!h.ok()) r.problems.push_back("blob sha256:" + hex + ": " + h.error().message());
    else if (*h != hex) r.problems.push_back("blob sha256:" + hex + " has content sha256:" + *h);
  }
  r.snapshots = list(fs::join(st.root(), "s")).size();
  std::string cache = fs::join(st.root(), "cache");
  for (const auto& name : list(cache)) {
    if (is_tmp_name(name)) continue;
    if (name.size() < 6 || name.substr(name.size() - 5) != ".json") {
      r.problems.push_back("stray file in cache/: " + name);
      continue;
    }
    ++r.cache_entries;
    auto j = read_json(fs::join(cache, name));
    auto entry = j ? CacheEntry::from_json(*j) : std::nullopt;
    if (!entry) {
      r.problems.push_back("cache entry " + name + " is not valid JSON");
      continue;
    }
    if (!st.has_snapshot(entry->snapshot))
      r.problems.push_back("cache entry " + name + ": snapshot " + entry->snapshot + " is missing");
    for (const auto& [compression, blob] : entry->blobs)
      if (!st.has_blob(blob.digest))
        r.problems.push_back("cache entry " + name + ": " + compression + " blob " + blob.digest + " is missing");
  }
  for (const auto& [tag, digest] : st.list_tags()) {
    ++r.images;
    std::set<std::string> seen;
    std::vector<std::string> probs;
    image_blobs(st, digest, seen, &probs);
    for (auto& p : probs) r.problems.push_back("image " + tag + ": " + p);
  }
  return r;
}

Result<Usage> disk_usage(const Store& st) {
  Usage u;
  std::string blobs = fs::join(st.root(), "blobs/sha256");
  for (const auto& hex : list(blobs)) {
    ++u.blob_count;
    u.blob_bytes += file_bytes(fs::join(blobs, hex));
  }
  std::string snaps = fs::join(st.root(), "s");
  for (const auto& id : list(snaps)) {
    ++u.snapshot_count;
    u.snapshot_bytes += tree_bytes(fs::join(snaps, id));
  }
  u.cache_entries = list(fs::join(st.root(), "cache")).size();
  return u;
}

Result<PruneReport> prune(Store& st, const PruneOptions& opts,
                          const std::function<Status(const std::string&)>& remove_tree) {
  OCIB_ASSIGN_OR_RETURN(fs::FileLock lock, gc_lock(st, true));
  PruneReport r;
  auto now = std::chrono::system_clock::now();
  int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  if (opts.all) {
    // Under the tag lock too: `ocib rmi` edits images.json without the GC lock.
    OCIB_ASSIGN_OR_RETURN(fs::FileLock tags, fs::FileLock::acquire(fs::join(st.root(), "locks/images.lock")));
    OCIB_TRY(fs::write_file_atomic(fs::join(st.root(), "images.json"), "{}"));
  }
  std::set<std::string> keep_snapshots, keep_blobs;
  std::string cache = fs::join(st.root(), "cache");
  for (const auto& name : list(cache)) {
    if (is_tmp_name(name)) {
      (void)remove_abandoned_tmp(cache, name, now_s);
      continue;
    }
    std::string path = fs::join(cache, name);
    struct stat sb;
    bool old = true;
    if (opts.older_than_seconds > 0 && ::stat(path.c_str(), &sb) == 0) {
      auto mtime = std::chrono::system_clock::from_time_t(sb.st_mtime);
      old = std::chrono::duration_cast<std::chrono::seconds>(now - mtime).count() >= opts.older_than_seconds;
    }
    if (old) {
      if (::unlink(path.c_str()) == 0) ++r.cache_entries;
      continue;
    }
    auto j = read_json(path);
    if (auto entry = j ? CacheEntry::from_json(*j) : std::nullopt) {
      keep_snapshots.insert(entry->snapshot);
      for (const auto& [compression, blob] : entry->blobs) keep_blobs.insert(blob.digest);
    }
  }
  for (const auto& [tag, digest] : st.list_tags()) image_blobs(st, digest, keep_blobs, nullptr);
  std::string snaps = fs::join(st.root(), "s");
  for (const auto& id : list(snaps)) {
    if (keep_snapshots.count(id)) continue;
    std::string p = fs::join(snaps, id);
    uint64_t bytes = tree_bytes(p);
    OCIB_TRY(remove_tree(p));
    ++r.snapshots;
    r.bytes += bytes;
  }
  // A flattened lower goes with its chain: kept while every snapshot it merges is kept. Its
  // files are hardlinks of the snapshots' (only its directories take space of their own).
  std::string flats = fs::join(st.root(), "f");
  const std::vector<std::string> flat_names = list(flats);
  const std::set<std::string> present(flat_names.begin(), flat_names.end());
  for (const auto& name : flat_names) {
    if (is_tmp_name(name)) {
      (void)remove_abandoned_tmp(flats, name, now_s);
      continue;
    }
    const bool is_chain = name.size() > 6 && name.ends_with(".chain");
    std::string p = fs::join(flats, name);
    if (is_chain) {
      // A chain file whose directory never appeared (a flatten interrupted before the rename).
      if (!present.count(name.substr(0, name.size() - 6))) ::unlink(p.c_str());
      continue;
    }
    bool keep = false;
    if (auto chain = fs::read_file(p + ".chain"); chain.ok()) {
      keep = true;
      for (size_t pos = 0; pos < chain->size();) {
        size_t nl = chain->find('\n', pos);
        if (nl == std::string::npos) nl = chain->size();
        if (nl > pos && !keep_snapshots.count(chain->substr(pos, nl - pos))) keep = false;
        pos = nl + 1;
      }
    }
    if (keep) continue;
    OCIB_TRY(remove_tree(p));
    ::unlink((p + ".chain").c_str());
    ++r.snapshots;
  }
  // The remembered digests of files in snapshot chains (solver: content-based keys) name
  // snapshots by id; a removed id may be made again with other files: forget them all.
  if (r.snapshots > 0) (void)fs::remove_all(fs::join(st.root(), "contenthash"));
  std::string blobs = fs::join(st.root(), "blobs/sha256");
  for (const auto& hex : list(blobs)) {
    if (is_tmp_name(hex)) {
      std::string p = fs::join(blobs, hex);
      uint64_t bytes = file_bytes(p);
      if (remove_abandoned_tmp(blobs, hex, now_s)) r.bytes += bytes;
      continue;
    }
    if (keep_blobs.count("sha256:" + hex)) continue;
    std::string p = fs::join(blobs, hex);
    uint64_t bytes = file_bytes(p);
    if (::unlink(p.c_str()) == 0) {
      ++r.blobs;
      r.bytes += bytes;
    }
  }
  return r;
}

}  // namespace ocib::store
