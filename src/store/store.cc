#include "store/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <csignal>
#include <random>

#include "base/sha256.h"

namespace ocib::store {

static std::string hex_of(std::string_view digest) {
  auto pos = digest.find(':');
  return std::string(pos == std::string_view::npos ? digest : digest.substr(pos + 1));
}

// Digests and keys become path components: refuse anything but lowercase hex.
static bool is_hex(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string Store::default_root() {
  if (const char* r = std::getenv("OCIB_ROOT"); r && *r) return r;
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) return fs::join(x, "ocib");
  const char* home = std::getenv("HOME");
  return fs::join(fs::join(home && *home ? home : "/tmp", ".local/share"), "ocib");
}

Result<Store> Store::open(const std::string& root) {
  std::string abs = root;
  if (!abs.empty() && abs[0] != '/') {
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) return Error::from_errno("getcwd", errno);
    abs = fs::join(cwd, abs);
  }
  for (const char* sub : {"blobs/sha256", "s", "f", "cache", "locks", "tmp"})
    OCIB_TRY(fs::mkdirs(fs::join(abs, sub)));
  // The store holds snapshot directories that become container roots: keep it private.
  ::chmod(abs.c_str(), 0700);
  return Store(fs::clean(abs));
}

std::string Store::blob_path(std::string_view digest) const {
  return fs::join(root_, "blobs/sha256/" + hex_of(digest));
}

bool Store::has_blob(std::string_view digest) const {
  return is_hex(hex_of(digest)) && fs::exists(blob_path(digest));
}

Result<std::string> Store::put_blob(std::string_view bytes) {
  std::string digest = "sha256:" + Sha256::hex(bytes);
  if (has_blob(digest)) return digest;
  OCIB_TRY(fs::write_file_atomic(blob_path(digest), bytes));
  return digest;
}

Status Store::adopt_blob(const std::string& tmp_path, std::string_view digest) {
  if (!is_hex(hex_of(digest))) return Error(Errc::kCorrupt, "bad digest " + std::string(digest));
  std::string dst = blob_path(digest);
  if (::rename(tmp_path.c_str(), dst.c_str()) != 0)
    return Error::from_errno("rename " + tmp_path + " -> " + dst, errno);
  return {};
}

static std::string random_name() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char kChars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string s(10, 'x');
  for (auto& c : s) c = kChars[rng() % (sizeof kChars - 1)];
  return s;
}

Result<std::string> Store::make_tmp_dir(const std::string& prefix) {
  std::string p = fs::join(root_, "tmp/" + std::to_string(getpid()) + "-" + prefix + random_name());
  if (::mkdir(p.c_str(), 0755) != 0) return Error::from_errno("mkdir " + p, errno);
  ::chmod(p.c_str(), 0755);  // not subject to umask: becomes a container's root directory
  return p;
}

std::string Store::tmp_file_path(const std::string& prefix) {
  return fs::join(root_, "tmp/" + std::to_string(getpid()) + "-" + prefix + random_name());
}

std::string Store::snapshot_path(std::string_view id) const { return fs::join(root_, "s/" + std::string(id)); }

bool Store::has_snapshot(std::string_view id) const { return is_hex(id) && fs::is_dir(snapshot_path(id)); }

Status Store::commit_snapshot(const std::string& staged_dir, std::string_view id) {
  if (!is_hex(id)) return Error(Errc::kCorrupt, "bad snapshot id " + std::string(id));
  std::string dst = snapshot_path(id);
  if (::rename(staged_dir.c_str(), dst.c_str()) != 0) {
    if (errno == EEXIST || errno == ENOTEMPTY) return fs::remove_all(staged_dir);
    return Error::from_errno("rename " + staged_dir + " -> " + dst, errno);
  }
  return {};
}

std::string Store::flat_path(std::string_view id) const { return fs::join(root_, "f/" + std::string(id)); }

bool Store::has_flat(std::string_view id) const { return is_hex(id) && fs::is_dir(flat_path(id)); }

Status Store::commit_flat(const std::string& staged_dir, std::string_view id, const std::vector<std::string>& chain) {
  if (!is_hex(id)) return Error(Errc::kCorrupt, "bad flat id " + std::string(id));
  std::string list;
  for (const auto& c : chain) list += c + "\n";
  OCIB_TRY(fs::write_file_atomic(flat_path(id) + ".chain", list));
  std::string dst = flat_path(id);
  if (::rename(staged_dir.c_str(), dst.c_str()) != 0) {
    if (errno == ENOTEMPTY) errno = EEXIST;  // the caller removes its staged copy (subordinate ids)
    return Error::from_errno("rename " + staged_dir + " -> " + dst, errno);
  }
  return {};
}

std::optional<CacheEntry> Store::cache_get(std::string_view key) const {
  if (!is_hex(key)) return std::nullopt;
  auto data = fs::read_file(fs::join(root_, "cache/" + std::string(key) + ".json"));
  if (!data.ok()) return std::nullopt;
  auto j = nlohmann::json::parse(*data, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return CacheEntry::from_json(j);
}

Status Store::cache_put(std::string_view key, const CacheEntry& entry) {
  if (!is_hex(key)) return Error(Errc::kCorrupt, "bad cache key");
  return fs::write_file_atomic(fs::join(root_, "cache/" + std::string(key) + ".json"),
                               entry.to_json().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

Result<fs::FileLock> Store::lock_key(std::string_view key) {
  if (!is_hex(key)) return Error(Errc::kCorrupt, "bad cache key");
  return fs::FileLock::acquire(fs::join(root_, "locks/" + std::string(key) + ".lock"));
}

Status Store::tag(const std::string& name, const std::string& manifest_digest) {
  // Serialise concurrent taggers on one store.
  OCIB_ASSIGN_OR_RETURN(fs::FileLock lk, fs::FileLock::acquire(fs::join(root_, "locks/images.lock")));
  std::string path = fs::join(root_, "images.json");
  nlohmann::json j = nlohmann::json::object();
  if (auto data = fs::read_file(path); data.ok()) {
    auto parsed = nlohmann::json::parse(*data, nullptr, false);
    if (!parsed.is_discarded() && parsed.is_object()) j = std::move(parsed);
  }
  j[name] = manifest_digest;
  return fs::write_file_atomic(path, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
}

Status Store::untag(const std::string& name) {
  OCIB_ASSIGN_OR_RETURN(fs::FileLock lk, fs::FileLock::acquire(fs::join(root_, "locks/images.lock")));
  std::string path = fs::join(root_, "images.json");
  auto data = fs::read_file(path);
  auto j = data.ok() ? nlohmann::json::parse(*data, nullptr, false) : nlohmann::json();
  if (j.is_discarded() || !j.is_object() || !j.contains(name))
    return Error(Errc::kNotFound, "no image named " + name);
  j.erase(name);
  return fs::write_file_atomic(path, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
}

std::optional<std::string> Store::resolve_tag(const std::string& name) const {
  auto data = fs::read_file(fs::join(root_, "images.json"));
  if (!data.ok()) return std::nullopt;
  auto j = nlohmann::json::parse(*data, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains(name) || !j[name].is_string()) return std::nullopt;
  return j[name].get<std::string>();
}

std::vector<std::pair<std::string, std::string>> Store::list_tags() const {
  std::vector<std::pair<std::string, std::string>> out;
  auto data = fs::read_file(fs::join(root_, "images.json"));
  if (!data.ok()) return out;
  auto j = nlohmann::json::parse(*data, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return out;
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.value().is_string()) out.emplace_back(it.key(), it.value().get<std::string>());
  return out;
}

void Store::clean_tmp(const std::function<Status(const std::string&)>& remove) {
  // Staging names embed the pid of their build: remove those whose process is gone.
  std::string tmp = fs::join(root_, "tmp");
  DIR* d = ::opendir(tmp.c_str());
  if (!d) return;
  std::vector<std::string> stale;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    auto dash = name.find('-');
    if (dash == std::string::npos || dash == 0) continue;
    pid_t pid = static_cast<pid_t>(std::atoi(name.substr(0, dash).c_str()));
    if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH) stale.push_back(fs::join(tmp, name));
  }
  ::closedir(d);
  for (const auto& p : stale) (void)(remove ? remove(p) : fs::remove_all(p));
}

}  // namespace ocib::store
