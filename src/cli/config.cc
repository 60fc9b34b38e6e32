#include "cli/config.h"

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include <toml.hpp>

#include "base/fs.h"

namespace ocib::cli {

namespace {

// toml11's messages are multi-line pictures of the source; keep the first line's cause.
std::string first_line(const std::string& what) {
  std::string s = what.substr(0, what.find('\n'));
  if (s.rfind("[error] ", 0) == 0) s = s.substr(8);
  if (auto c = s.find(": "); c != std::string::npos && s.rfind("toml::", 0) == 0) s = s.substr(c + 2);
  return s;
}

Error bad(const std::string& path, const toml::value& v, const std::string& msg) {
  return Error::at({path, int(v.location().line()), 0}, msg);
}

Result<std::string> get_string(const std::string& path, const toml::value& v, const std::string& key) {
  if (!v.is_string()) return bad(path, v, key + " must be a string");
  return std::string(v.as_string());
}

Result<std::vector<std::string>> get_strings(const std::string& path, const toml::value& v, const std::string& key) {
  if (!v.is_array()) return bad(path, v, key + " must be an array of strings");
  std::vector<std::string> out;
  for (const auto& e : v.as_array()) {
    if (!e.is_string()) return bad(path, e, key + " must be an array of strings");
    out.emplace_back(e.as_string());
  }
  return out;
}

Result<bool> get_bool(const std::string& path, const toml::value& v, const std::string& key) {
  if (!v.is_boolean()) return bad(path, v, key + " must be true or false");
  return v.as_boolean();
}

bool one_of(const std::string& s, std::initializer_list<const char*> allowed) {
  for (const char* a : allowed)
    if (s == a) return true;
  return false;
}

}  // namespace

Status parse_config(const std::string& text, const std::string& path, Config& cfg) {
  toml::value root;
  try {
    std::istringstream in(text);
    root = toml::parse(in, path);
  } catch (const toml::exception& e) {
    return Error::at({path, int(e.location().line()), 0}, first_line(e.what()));
  } catch (const std::exception& e) {
    return Error::at({path, 0, 0}, first_line(e.what()));
  }
  for (const auto& [section, body] : root.as_table()) {
    if (!body.is_table()) return bad(path, body, "'" + section + "' must be a table ([" + section + "])");
    const auto& tbl = body.as_table();
    if (section == "store") {
      for (const auto& [k, v] : tbl) {
        if (k != "root") return bad(path, v, "unknown key store." + k);
        OCIB_ASSIGN_OR_RETURN(auto s, get_string(path, v, "store.root"));
        cfg.store_root = s;
      }
    } else if (section == "build") {
      for (const auto& [k, v] : tbl) {
        if (k == "jobs") {
          if (!v.is_integer() || v.as_integer() < 1 || v.as_integer() > 1024)
            return bad(path, v, "build.jobs must be a number from 1 to 1024");
          cfg.jobs = int(v.as_integer());
        } else if (k == "progress") {
          OCIB_ASSIGN_OR_RETURN(auto s, get_string(path, v, "build.progress"));
          if (!one_of(s, {"auto", "tty", "plain", "rawjson", "quiet"}))
            return bad(path, v, "build.progress must be auto, tty, plain, rawjson or quiet");
          cfg.progress = s;
        } else if (k == "network") {
          OCIB_ASSIGN_OR_RETURN(auto s, get_string(path, v, "build.network"));
          if (!one_of(s, {"none", "host", "default"})) return bad(path, v, "build.network must be none, host or default");
          cfg.network = s;
        } else {
          return bad(path, v, "unknown key build." + k);
        }
      }
    } else if (section == "sandbox") {
      for (const auto& [k, v] : tbl) {
        if (k == "isolation") {
          OCIB_ASSIGN_OR_RETURN(auto s, get_string(path, v, "sandbox.isolation"));
          if (!one_of(s, {"auto", "full", "procfs-less", "chroot"}))
            return bad(path, v, "sandbox.isolation must be auto, full, procfs-less or chroot");
          cfg.isolation = s;
          continue;
        }
        if (k != "snapshotter") return bad(path, v, "unknown key sandbox." + k);
        OCIB_ASSIGN_OR_RETURN(auto s, get_string(path, v, "sandbox.snapshotter"));
        if (!one_of(s, {"auto", "overlay", "fuse-overlayfs", "copy"}))
          return bad(path, v, "sandbox.snapshotter must be auto, overlay, fuse-overlayfs or copy");
        cfg.snapshotter = s;
      }
    } else if (section == "registry") {
      for (const auto& [host, reg] : tbl) {
        if (!reg.is_table()) return bad(path, reg, "registry.\"" + host + "\" must be a table");
        for (const auto& [k, v] : reg.as_table()) {
          std::string name = "registry.\"" + host + "\"." + k;
          if (k == "mirrors") {
            OCIB_ASSIGN_OR_RETURN(auto m, get_strings(path, v, name));
            auto& list = cfg.mirrors[host];
            list.insert(list.end(), m.begin(), m.end());
          } else if (k == "insecure" || k == "http") {
            OCIB_ASSIGN_OR_RETURN(bool b, get_bool(path, v, name));
            if (b) cfg.insecure_registries.push_back(host);
          } else {
            return bad(path, v, "unknown key " + name + " (known: mirrors, insecure, http)");
          }
        }
      }
    } else {
      return bad(path, body, "unknown section [" + section + "] (known: store, build, sandbox, registry)");
    }
  }
  // TOML tables are unordered; keep lists stable for logs and tests.
  std::sort(cfg.insecure_registries.begin(), cfg.insecure_registries.end());
  cfg.insecure_registries.erase(std::unique(cfg.insecure_registries.begin(), cfg.insecure_registries.end()),
                                cfg.insecure_registries.end());
  cfg.files.push_back(path);
  return {};
}

Result<Config> load_config() {
  std::vector<std::string> paths;
  if (const char* c = std::getenv("OCIB_CONFIG"); c && *c) {
    paths.emplace_back(c);
  } else {
    paths.emplace_back("/etc/ocib/ocib.toml");
    if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x) {
      paths.push_back(fs::join(x, "ocib/ocib.toml"));
    } else if (const char* h = std::getenv("HOME"); h && *h) {
      paths.push_back(fs::join(h, ".config/ocib/ocib.toml"));
    }
  }
  Config cfg;
  for (const auto& p : paths) {
    auto text = fs::read_file(p);
    if (!text.ok()) {
      if (text.error().sys_errno() == ENOENT && !std::getenv("OCIB_CONFIG")) continue;
      return std::move(text.error()).wrap("reading config file " + p);
    }
    OCIB_TRY(parse_config(*text, p, cfg));
  }
  return cfg;
}

void apply_config_env(const Config& cfg) {
  if (cfg.store_root) setenv("OCIB_ROOT", cfg.store_root->c_str(), 0);
  if (cfg.snapshotter) setenv("OCIB_SNAPSHOTTER", cfg.snapshotter->c_str(), 0);
  if (cfg.isolation) setenv("OCIB_ISOLATION", cfg.isolation->c_str(), 0);
}

}  // namespace ocib::cli
