#include "solver/userdb.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

#include "base/fd.h"
#include "base/spec.h"

namespace ocib::solver {

// Reads a file of the image whose layers are `lowers` (topmost first), honouring whiteouts of
// the file itself. Used for /etc/passwd and /etc/group.
// Resolved beneath each layer directory without following any symlink (an image's `etc ->
// /root` must not make ocib read the host's files), and at most 16 MiB.
std::optional<std::string> read_image_file(const std::vector<std::string>& lowers, const std::string& path) {
  std::string rel = path;
  while (!rel.empty() && rel[0] == '/') rel.erase(0, 1);
  for (const auto& l : lowers) {
    UniqueFd dir(::open(l.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir.valid()) continue;
    open_how how{};
    // O_PATH first: a device node or FIFO in the image is looked at, never opened.
    how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    int pfd = static_cast<int>(::syscall(SYS_openat2, dir.get(), rel.c_str(), &how, sizeof how));
    if (pfd < 0) {
      if (errno == ENOENT) continue;
      return std::nullopt;  // a symlink on the way (or in this layer's place): not followed
    }
    UniqueFd pf(pfd);
    struct stat st;
    if (::fstat(pfd, &st) != 0) continue;
    if (S_ISCHR(st.st_mode) && st.st_rdev == 0) return std::nullopt;
    if (!S_ISREG(st.st_mode) || st.st_size > (16 << 20)) return std::nullopt;
    UniqueFd f(::open(("/proc/self/fd/" + std::to_string(pfd)).c_str(), O_RDONLY | O_CLOEXEC));
    if (!f.valid()) return std::nullopt;
    std::string data;
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(f.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return std::nullopt;
      if (n == 0) break;
      data.append(buf, static_cast<size_t>(n));
      if (data.size() > (16u << 20)) return std::nullopt;
    }
    return data;
  }
  return std::nullopt;
}

namespace {

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> f;
  for (size_t i = 0;;) {
    size_t j = text.find(sep, i);
    f.push_back(text.substr(i, j == std::string::npos ? std::string::npos : j - i));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return f;
}

// The non-empty lines of a passwd/group formatted file, each split into its ':' fields.
std::vector<std::vector<std::string>> db_rows(const std::optional<std::string>& db) {
  std::vector<std::vector<std::string>> rows;
  if (!db) return rows;
  for (const auto& line : split(*db, '\n'))
    if (!line.empty()) rows.push_back(split(line, ':'));
  return rows;
}

// Looks `name` up in a passwd/group formatted file: returns (id field 3, gid field 4 if any).
std::optional<std::pair<uint32_t, uint32_t>> lookup_db(const std::optional<std::string>& db,
                                                        const std::string& name) {
  for (const auto& f : db_rows(db)) {
    if (f.size() >= 3 && f[0] == name) {
      auto id = parse_u32(f[2]);
      if (!id) continue;
      uint32_t gid = f.size() >= 4 ? parse_u32(f[3]).value_or(*id) : *id;
      return std::make_pair(*id, gid);
    }
  }
  return std::nullopt;
}

}  // namespace

// "user[:group]" -> uid, gid, resolving names through the image's /etc/passwd and /etc/group.
Result<std::pair<uint32_t, uint32_t>> resolve_user(const std::vector<std::string>& lowers,
                                                    const std::string& spec) {
  std::string u = spec.empty() ? "0" : spec;
  std::string g;
  if (auto c = u.find(':'); c != std::string::npos) {
    g = u.substr(c + 1);
    u = u.substr(0, c);
  }
  uint32_t uid = 0, gid = 0;
  if (auto id = parse_u32(u)) {
    uid = *id;
    gid = 0;
    if (g.empty()) {
      // A numeric uid takes its primary group from passwd when listed there.
      for (const auto& f : db_rows(read_image_file(lowers, "/etc/passwd")))
        if (f.size() >= 5 && f[2] == u) gid = parse_u32(f[3]).value_or(0);
    }
  } else if (u == "root") {
    uid = 0;
  } else {
    auto ent = lookup_db(read_image_file(lowers, "/etc/passwd"), u);
    if (!ent) return Error::invalid("unable to find user " + u + ": no matching entries in passwd file");
    uid = ent->first;
    gid = ent->second;
  }
  if (!g.empty()) {
    if (auto id = parse_u32(g)) {
      gid = *id;
    } else {
      auto ent = lookup_db(read_image_file(lowers, "/etc/group"), g);
      if (!ent) return Error::invalid("unable to find group " + g + ": no matching entries in group file");
      gid = ent->first;
    }
  }
  return std::make_pair(uid, gid);
}

Result<std::pair<uint32_t, uint32_t>> resolve_chown(const std::vector<std::string>& lowers, const std::string& spec) {
  std::string u = spec, g;
  if (auto c = u.find(':'); c != std::string::npos) {
    g = u.substr(c + 1);
    u = u.substr(0, c);
  }
  uint32_t uid = 0, gid = 0;
  if (auto id = parse_u32(u)) {
    uid = gid = *id;
  } else if (!u.empty()) {
    auto passwd = read_image_file(lowers, "/etc/passwd");
    if (!passwd) return Error::invalid("unable to find user " + u + ": open /etc/passwd: no such file or directory");
    if (auto ent = lookup_db(passwd, u)) {
      uid = ent->first;
      gid = ent->second;
    }
  }
  if (auto id = parse_u32(g)) {
    gid = *id;
  } else if (!g.empty()) {
    auto group = read_image_file(lowers, "/etc/group");
    if (!group) return Error::invalid("unable to find group " + g + ": open /etc/group: no such file or directory");
    if (auto ent = lookup_db(group, g)) gid = ent->first;
  }
  return std::make_pair(uid, gid);
}

std::string home_dir(const std::vector<std::string>& lowers, const std::string& spec) {
  std::string u = spec.empty() ? "root" : spec.substr(0, spec.find(':'));
  for (const auto& f : db_rows(read_image_file(lowers, "/etc/passwd")))
    if (f.size() >= 6 && (f[0] == u || (parse_u32(u) && f[2] == u))) return f[5].empty() ? "/" : f[5];
  return "/";
}

// The supplementary groups of a RUN's user, as current BuildKit sets them (runc's GetExecUser,
// plus the primary group since CVE-2023-25173): the primary gid first; then, for a user found in
// the image's /etc/passwd (by name, or by uid) without an explicit group, every group of
// /etc/group that lists the name as a member. BuildKit's testUserAdditionalGids.
std::vector<uint32_t> supplementary_groups(const std::vector<std::string>& lowers, const std::string& spec,
                                           uint32_t primary_gid) {
  std::string u = spec.empty() ? "root" : spec;
  std::vector<uint32_t> out = {primary_gid};
  if (u.find(':') != std::string::npos) return out;
  auto lines = [](const std::optional<std::string>& db) {  // as runc: '#' lines are comments
    auto rows = db_rows(db);
    rows.erase(std::remove_if(rows.begin(), rows.end(), [](const auto& f) { return f[0].rfind('#', 0) == 0; }),
               rows.end());
    return rows;
  };
  std::string name;
  const bool numeric = parse_u32(u).has_value();
  for (const auto& f : lines(read_image_file(lowers, "/etc/passwd")))
    if (f.size() >= 3 && (numeric ? f[2] == u : f[0] == u)) {
      name = f[0];
      break;
    }
  if (name.empty()) return out;
  for (const auto& f : lines(read_image_file(lowers, "/etc/group"))) {
    if (f.size() < 4) continue;
    auto gid = parse_u32(f[2]);
    if (!gid || *gid == primary_gid) continue;
    for (const auto& m : split(f[3], ','))
      if (m == name && std::find(out.begin(), out.end(), *gid) == out.end()) out.push_back(*gid);
  }
  return out;
}

}  // namespace ocib::solver
